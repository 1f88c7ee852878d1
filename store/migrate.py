"""Apply Alembic migrations programmatically (`cairn db upgrade`)."""

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from store.engine import Database


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "store:migrations")
    return cfg


def upgrade(db: Database, revision: str = "head") -> str | None:
    """Upgrade the schema to `revision`; returns the revision the database is at afterwards."""
    cfg = _config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
    return current_revision(db)


def current_revision(db: Database) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of Cairn."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def revise(db: Database, message: str) -> None:
    """Autogenerate a new migration from the table definitions (for developers)."""
    cfg = _config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True, rev_id=None)
