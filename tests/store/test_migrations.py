"""The migrations build exactly the schema the table definitions describe, on both backends."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.engine import Database
from store.search import include_name
from store.tables import Base


def test_migrated_schema_matches_the_table_definitions(db: Database) -> None:
    with db.engine.connect() as conn:
        # The FTS5 table with its shadow tables (SQLite) and the expression GIN index
        # (PostgreSQL) exist on one dialect each and are created by hand in the migration;
        # tests/store/test_search.py checks that they exist.
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": include_name}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
