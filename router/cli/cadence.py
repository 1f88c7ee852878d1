"""`cairn cadence run|read`: the review cadence by hand, and marking a lesson's feedback read."""

import click

from connectors.target import Target
from core.errors import ConfigurationError, NotFoundError
from core.work import System
from router.access.operator import cli_principal
from router.cli.report import write_rows
from router.cli.support import database, load_settings, require_schema
from router.compose import build_github_target, build_jira_target
from router.lessons.cadence import Action, CadenceService, trackers_from
from router.ruleset.source import load_rule_set
from rules.loader import RuleSet, RuleSetError

COLUMNS = ["team", "action", "items", "issue", "url", "detail"]


@click.group("cadence")
def cadence_group() -> None:
    """The review cadence: each owner team's issue of lessons to review, in its own tracker."""


@cadence_group.command("run")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, JSON for programs.",
)
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def run(fmt: str, label: str | None) -> None:
    """Open or update one issue per owner team listing its lessons past their review-by date,
    flagged for revision, or with unread feedback; write nothing where nothing changed.

    Each team's tracker is its `tracker` in the team map (`cairn teams import`). Exits 1 when a
    team's issue could not be written (the others are done).
    """
    settings = load_settings()
    require_schema(settings)
    try:
        github, jira = build_github_target(settings), build_jira_target(settings)
        rules = None if settings.rules_path is None else load_rule_set(settings.rules_path)
    except (ConfigurationError, RuleSetError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    targets: dict[System, Target] = {}
    if github is not None:
        targets[System.GITHUB] = github
    if jira is not None:
        targets[System.JIRA] = jira
    rule_set: RuleSet | None = rules
    with database(settings) as db:
        service = CadenceService(
            db, trackers_from(targets), settings.public_url, rules=lambda: rule_set
        )
        outcomes = service.run(actor=cli_principal(label))
    rows = [
        {
            "team": o.team,
            "action": o.action.value,
            "items": o.items,
            "issue": o.issue,
            "url": o.url,
            "detail": o.detail,
        }
        for o in outcomes
    ]
    if not rows and fmt == "table":
        click.echo("nothing needs review")
    else:
        write_rows(rows, COLUMNS, fmt)
    if any(o.action == Action.FAILED for o in outcomes):
        raise SystemExit(1)


@cadence_group.command("read")
@click.argument("lesson")
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def read(lesson: str, label: str | None) -> None:
    """Mark LESSON's feedback read: it leaves the cadence until new feedback arrives."""
    settings = load_settings()
    require_schema(settings)
    with database(settings) as db:
        try:
            CadenceService(db, {}, settings.public_url).mark_read(lesson, cli_principal(label))
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{lesson}: feedback marked read")
