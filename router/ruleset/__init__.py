"""The rule set in force: reading rule files from disk, the active compiled set, live reloads.

May import `rules`, the store and settings; nothing else in `router`.
"""
