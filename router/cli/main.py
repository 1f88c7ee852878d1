"""The `cairn` command group: logging set-up, and every command group registered in one place."""

import logging

import click

from router.cli.audit import audit_group
from router.cli.backfill import backfill_group
from router.cli.cadence import cadence_group
from router.cli.compliance import evidence_group, waivers_group
from router.cli.db import db, queue
from router.cli.demo import demo
from router.cli.docs import docs_group
from router.cli.lessons import lessons_group
from router.cli.report import feedback_group, flags_group, placements_group, report_group
from router.cli.rules import rules_group
from router.cli.service import serve, worker
from router.cli.teams import teams_group
from router.cli.tokens import tokens_group
from router.cli.training import training_group


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Cairn: capture lessons and place them inside the work people already do."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # Alembic narrates every connection ("Context impl SQLiteImpl.") at INFO.
        logging.getLogger("alembic").setLevel(logging.WARNING)


for command in (
    serve,
    worker,
    db,
    queue,
    rules_group,
    lessons_group,
    tokens_group,
    teams_group,
    training_group,
    audit_group,
    placements_group,
    report_group,
    feedback_group,
    flags_group,
    waivers_group,
    evidence_group,
    backfill_group,
    cadence_group,
    demo,
    docs_group,
):
    main.add_command(command)
