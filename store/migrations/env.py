"""Alembic environment: runs on the connection handed in by `store.migrate`."""

from alembic import context
from sqlalchemy import Connection

from store.search import include_name
from store.tables import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through `cairn db upgrade` (store.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # The full-text search objects are dialect-specific; the migration creates them by hand.
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
