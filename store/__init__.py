"""Persistence: SQLAlchemy tables, repositories speaking core models, inbox/outbox, migrations."""
