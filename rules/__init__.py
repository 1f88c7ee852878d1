"""The routing-rule language: schema, loading, evaluation and explanation (pure, no I/O)."""

from rules.native import prefer_fresh_engine

prefer_fresh_engine()
