"""Alembic migration environment for Cairn's schema."""
