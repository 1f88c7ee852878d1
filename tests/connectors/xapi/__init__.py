"""xAPI connector tests: the poller against a real LRS (Ralph) and the contract fake."""
