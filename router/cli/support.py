"""What every `cairn` command shares: settings with a readable error, the configured database."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from router.settings import Settings
from store import migrate
from store.engine import Database


def load_settings() -> Settings:
    """Settings from the environment, or a CLI error naming the variable and the problem."""
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the variable and the problem
        raise click.ClickException(f"invalid CAIRN_* settings: {exc}") from exc


@contextmanager
def database(settings: Settings | None = None, *, create: bool = False) -> Iterator[Database]:
    """The configured database, disposed of when the command is done with it.

    A SQLite file that does not exist is created only when `create` (`cairn db upgrade`, the
    demo); any other command stops with the fix instead of leaving an empty file behind.
    """
    settings = settings or load_settings()
    url = make_url(settings.database_url.get_secret_value())
    path = url.database if url.get_backend_name() == "sqlite" else None
    if not create and path and path != ":memory:" and not Path(path).exists():
        raise click.ClickException(
            f"no database at {path}: run `cairn db upgrade` to create it "
            "(or point CAIRN_DATABASE_URL at an existing one)"
        )
    db = Database(settings.database_url.get_secret_value())
    try:
        yield db
    finally:
        db.dispose()


def require_schema(settings: Settings) -> None:
    """Stop with a message naming the fix when the database's schema is not the current one."""
    with database(settings) as opened:
        current, head = migrate.current_revision(opened), migrate.head_revision()
    if current != head:
        raise click.ClickException(
            f"database {settings.redacted_database_url()} is at schema revision {current}, "
            f"this version of Cairn needs {head}: run `cairn db upgrade`"
        )


@contextmanager
def checked_database() -> Iterator[Database]:
    """The configured database, once its schema is known to be the current one."""
    settings = load_settings()
    require_schema(settings)
    with database(settings) as db:
        yield db
