"""The `cairn` command."""

import asyncio
import json
import logging
import signal
import sys

import click
import uvicorn

from core.base import utcnow
from router.backfill_cli import backfill_group
from router.cli_support import database, load_settings, require_schema
from router.compose import build_runtime
from router.lessons_cli import lessons_group
from router.reloader import RulesReloader
from router.rules_cli import rules_group
from store import migrate, outbox

log = logging.getLogger("cairn")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Cairn: capture lessons and place them inside the work people already do."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.option("--host", default=None, help="Listen address (default CAIRN_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default CAIRN_PORT or 8000).")
@click.option("--no-workers", is_flag=True, help="Serve the API only; run `cairn worker` apart.")
def serve(host: str | None, port: int | None, no_workers: bool) -> None:
    """Run the HTTP API and, unless --no-workers, the pipeline workers."""
    from router.app import create_app

    settings = load_settings()
    require_schema(settings)
    runtime = build_runtime(settings, consume=not no_workers)
    log.info(
        "serving on %s:%s, database %s, transport %s",
        host or settings.host,
        port or settings.port,
        settings.redacted_database_url(),
        settings.redacted_broker_url(),
    )
    uvicorn.run(
        create_app(runtime),
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_level="warning",
    )


@main.command()
def worker() -> None:
    """Run pipeline workers only (scale them out in broker mode)."""
    settings = load_settings()
    require_schema(settings)
    runtime = build_runtime(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloader = RulesReloader(runtime.rules, settings.rules_reload_seconds, runtime.db)
        await runtime.transport.start()
        await reloader.start()
        log.info("worker running, transport %s", settings.redacted_broker_url())
        await stop.wait()
        await reloader.stop()
        await runtime.transport.stop()
        runtime.db.dispose()

    asyncio.run(run())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    settings = load_settings()
    with database(settings) as opened:
        revision = migrate.upgrade(opened)
    click.echo(f"{settings.redacted_database_url()} is at schema revision {revision}")


@db.command("current")
def db_current() -> None:
    """Print the schema revision the database is at, and the newest one."""
    with database() as opened:
        click.echo(f"current {migrate.current_revision(opened)}, head {migrate.head_revision()}")


@main.group()
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


main.add_command(rules_group)
main.add_command(lessons_group)
main.add_command(backfill_group)


@main.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the demo database here (default: a temporary directory).",
)
def demo(workdir: str | None) -> None:
    """Run the whole loop on the embedded default and print what happened."""
    from router.demo import run_demo

    sys.exit(run_demo(workdir))
