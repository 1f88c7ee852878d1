"""Identity use cases the API, the CLI and the demo share: API tokens and the local operator.

May import `core`, the store and settings; never HTTP or CLI code.
"""
