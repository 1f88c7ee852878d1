"""Canvas connector tests."""
