"""The routing-rule language: schema, loading, evaluation and explanation (pure, no I/O)."""
