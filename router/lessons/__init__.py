"""Lesson use cases shared by the HTTP API and the CLI: the review workflow, export and import.

May import the store, `core`, and stage topic names; never HTTP or CLI code.
"""
