"""`cairn training sync`: one round of the training sync by hand (the worker runs it every
CAIRN_TRAINING_SYNC_SECONDS): learners routed from the team map, progress read from the LMS,
new statements read from the learning record store, with progress on a long first read."""

import click

from router.cli.support import checked_database, load_settings
from router.compose import build_lms_clients
from router.lms.statements import StatementPoller
from router.lms.sweeper import TrainingSync


@click.group("training")
def training_group() -> None:
    """Training through an LMS: assignments and completions."""


@training_group.command("sync")
def sync() -> None:
    """Route every learner, read the LMS's progress and the LRS's new statements, once."""
    settings = load_settings()
    with checked_database() as db:
        clients = build_lms_clients(settings)
        statements = None
        if settings.xapi_url:
            poller = StatementPoller.configured(
                db, settings, progress=lambda n: click.echo(f"xAPI: {n} statements read so far")
            )
            statements = poller.poll_once
        done = TrainingSync(db, settings.training_sync_seconds, clients, statements).run_once()
    click.echo(
        f"{done['learners']} learners queued for routing (a running worker assigns their "
        f"training); {done['progress']} completions read from "
        f"{', '.join(sorted(clients)) or 'no LMS'}; {done['statements']} from statements"
        + ("" if settings.xapi_url else " (no LRS configured)")
    )
