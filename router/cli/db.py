"""`cairn db …` (the schema) and `cairn queue …` (the pipeline's durable queue)."""

import json

import click

from core.base import utcnow
from router.cli.support import database, load_settings
from store import migrate, outbox


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = load_settings()
    with database(settings, create=True) as opened:
        revision = migrate.upgrade(opened)
    click.echo(f"{settings.redacted_database_url()} is at schema revision {revision}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision the database is at, and the newest one."""
    with database() as opened:
        click.echo(f"current {migrate.current_revision(opened)}, head {migrate.head_revision()}")


@click.group()
def queue() -> None:
    """The pipeline's durable queue (the outbox)."""


@queue.command("status")
def queue_status() -> None:
    """Messages per status, as JSON."""
    with database() as opened, opened.transaction() as session:
        click.echo(json.dumps(outbox.counts(session)))


@queue.command("dead")
def queue_dead() -> None:
    """List dead-lettered messages with their last error."""
    with database() as opened, opened.transaction() as session:
        for message, error in outbox.dead_letters(session):
            click.echo(f"{message.id}\t{message.topic}\t{message.attempts}\t{error}")


@queue.command("retry-dead")
def queue_retry_dead() -> None:
    """Give every dead-lettered message a fresh set of attempts."""
    with database() as opened, opened.transaction() as session:
        click.echo(f"requeued {outbox.requeue_dead(session, utcnow())} messages")
