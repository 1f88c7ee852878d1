"""Reports shared by the HTTP API and the CLI: the placement ledger and adoption.

May import `core`, the store and settings; never HTTP or CLI code.
"""
