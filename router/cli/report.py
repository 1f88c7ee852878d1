"""`cairn placements list|show`, `cairn report adoption|overdue`: the ledger, adoption, overdue."""

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click

from core.adoption import REACHED, AdoptionRow, Tier
from core.errors import NotFoundError
from core.placement import PlacementState
from router.access.operator import cli_principal
from router.cli.support import checked_database, load_settings
from router.overdue import digest
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.feedback import FeedbackService
from router.reports.flags import FlagService, Thresholds
from router.reports.period import period
from store.engine import Database

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="A table for people, CSV for spreadsheets, JSON for programs.",
)


def filters_of(options: dict[str, Any]) -> Filters:
    start, end = options.get("start"), options.get("end")
    try:
        since, until = period(start.date() if start else None, end.date() if end else None)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from exc
    return Filters(
        lessons=options.get("lessons", ()),
        teams=options.get("teams", ()),
        projects=options.get("repositories", ()),
        states=[PlacementState(s) for s in options.get("states", ())],
        tiers=[Tier(t) for t in options.get("tiers", ())],
        since=since,
        until=until,
        work_items=options.get("work_items", ()),
    )


@contextmanager
def _service() -> Iterator[ReportService]:
    with checked_database() as db:
        yield ReportService(db)


def scope_options(command: Any) -> Any:
    """The filters every ledger and report command takes."""
    day = click.DateTime(formats=["%Y-%m-%d"])
    for option in reversed(
        [
            click.option("--lesson", "lessons", multiple=True, help="A lesson id (repeat)."),
            click.option("--team", "teams", multiple=True, help="A team (repeat)."),
            click.option(
                "--repository", "repositories", multiple=True, help="owner/repo or Jira project."
            ),
            click.option("--from", "start", type=day, default=None, help="First day, UTC."),
            click.option("--to", "end", type=day, default=None, help="Last day, included."),
        ]
    ):
        command = option(command)
    return command


def write_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(out.getvalue(), nl=False)
        return
    widths = {c: max([len(c), *(len(_cell(r.get(c))) for r in rows)]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(_cell(row.get(c)).ljust(widths[c]) for c in columns).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


@click.group("placements")
def placements_group() -> None:
    """The ledger: every lesson placed in a work item, its tier and what came back."""


@placements_group.command("list")
@scope_options
@click.option("--work-item", "work_items", multiple=True, help="A work item ref (repeat).")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in PlacementState]),
    help="A placement state (repeat).",
)
@click.option(
    "--tier",
    "tiers",
    multiple=True,
    type=click.Choice([t.value for t in Tier]),
    help="An adoption tier (repeat).",
)
@FORMAT
def list_placements(fmt: str, **options: Any) -> None:
    """Placements oldest first, with tier, team and project."""
    with _service() as service:
        found = [a.as_dict() for a in service.assessed(filters_of(options))]
    columns = [
        "id",
        "lesson_id",
        "lesson_version",
        "work_item_ref",
        "team",
        "rule_id",
        "mandate",
        "state",
        "tier",
        "created_at",
    ]
    write_rows(found, columns, fmt)


@placements_group.command("show")
@click.argument("placement_id")
def show(placement_id: str) -> None:
    """PLACEMENT_ID's record, tier and every signal, as JSON."""
    try:
        with _service() as service:
            found = service.placement(placement_id)
    except NotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    signals = [s.model_dump(mode="json") for s in found.entry.signals]
    click.echo(json.dumps({**found.as_dict(), "signals": signals}, indent=2))


@click.group("report")
def report_group() -> None:
    """Reports over what was placed and what came back."""


def _flat(row: AdoptionRow) -> dict[str, Any]:
    data = row.as_dict()
    counts: dict[str, int] = data["counts"]  # type: ignore[assignment]
    rates: dict[str, float | None] = data["rates"]  # type: ignore[assignment]
    flat: dict[str, Any] = {"group": row.group, "reach": row.reach, **counts}
    flat.update({f"{tier}_rate": rate for tier, rate in rates.items()})
    flat["dismissal_reasons"] = "; ".join(f"{r} ×{n}" for r, n in row.dismissals.most_common())
    flat["median_hours_to_acknowledge"] = data["median_hours_to_acknowledge"]
    flat["median_hours_to_verify"] = data["median_hours_to_verify"]
    return flat


@report_group.command("adoption")
@click.option(
    "--by",
    type=click.Choice([g.value for g in GroupBy]),
    default="lesson",
    show_default=True,
    help="Group placements by lesson, team, rule or repository.",
)
@scope_options
@FORMAT
def adoption(by: str, fmt: str, **options: Any) -> None:
    """Reach, tiers and their rates, dismissals by reason, median hours to acknowledge and verify.

    JSON adds placed / acknowledged / verified per week for every group.
    """
    with _service() as service:
        found = service.report(GroupBy(by), filters_of(options))
    if fmt == "json":
        click.echo(json.dumps(found.as_dict(), indent=2))
        return
    flat = [{**_flat(r), **found.recurrence_of(r.group)} for r in [*found.rows, found.total]]
    tiers = [t.value for t in Tier if t in REACHED]
    columns = [
        "group",
        "reach",
        *tiers,
        "verified_rate",
        "median_hours_to_acknowledge",
        "median_hours_to_verify",
        "recurrences",
        "placed_not_honoured",
    ]
    if fmt == "csv":
        columns = [
            *columns,
            *(f"{t}_rate" for t in tiers if t != "verified"),
            "undelivered",
            "withdrawn",
            "dismissal_reasons",
        ]
    write_rows(flat, columns, fmt)


@report_group.command("overdue")
@click.option("--owner", required=True, help="The team that owns the lessons.")
@FORMAT
def overdue(owner: str, fmt: str) -> None:
    """OWNER's digest: overdue placements of its lessons, longest overdue first."""
    with checked_database() as db:
        found = digest(db, owner)
    if fmt == "json":
        click.echo(json.dumps(found.model_dump(mode="json"), indent=2))
        return
    rows = [
        {
            "lesson": item.lesson_id,
            "title": item.title,
            "team": item.team,
            "work_item": item.work_item_ref,
            "due": item.due_at.date().isoformat(),
            "days_overdue": item.days_overdue,
            "reminded": "yes" if item.reminded else "no",
        }
        for item in found.items
    ]
    columns = ["lesson", "title", "team", "work_item", "due", "days_overdue", "reminded"]
    write_rows(rows, columns, fmt)


@click.group("feedback")
def feedback_group() -> None:
    """What engineers said about placed lessons."""


@feedback_group.command("list")
@click.option("--owner", default=None, help="Only lessons this team owns.")
@scope_options
@FORMAT
def feedback_list(owner: str | None, fmt: str, **options: Any) -> None:
    """Dismissals as not applicable, per lesson and reason, with where they came from."""
    options.pop("repositories", None)
    options.pop("lessons", None)
    with checked_database() as db:
        found = FeedbackService(db).dismissals(owner, filters_of(options))
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    rows = [
        {
            "lesson": f["lesson"],
            "owner": f["owner"],
            "count": r["count"],
            "reason": r["reason"],
            "where": " ".join(w["work_item"] for w in r["where"]),
        }
        for f in found
        for r in f["reasons"]
    ]
    write_rows(rows, ["lesson", "owner", "count", "reason", "where"], fmt)


@click.group("flags")
def flags_group() -> None:
    """Rules and lessons flagged for revision because their placements are rarely worth it."""


def _flag_service(db: Database) -> FlagService:
    settings = load_settings()
    return FlagService(db, Thresholds(settings.flag_precision_below, settings.flag_min_outcomes))


@flags_group.command("evaluate")
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def flags_evaluate(label: str | None) -> None:
    """Measure every rule and lesson now and raise the flags the thresholds call for."""
    with checked_database() as db:
        raised = _flag_service(db).evaluate(cli_principal(label))
    for flag in raised:
        click.echo(
            f"flagged {flag['kind']} {flag['subject']}: precision {flag['value']} "
            f"({flag['verified']} verified, {flag['dismissed']} dismissed, "
            f"{flag['ignored']} ignored)"
        )
    click.echo(f"{len(raised)} new flags", err=True)


@flags_group.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only flags nobody has cleared.")
def flags_list(open_only: bool) -> None:
    """One line per flag: kind, subject, when, precision, and who cleared it."""
    with checked_database() as db:
        found = _flag_service(db).listed(open_only=open_only)
    for flag in found:
        state = "open" if flag.open else f"cleared by {flag.cleared_by}"
        click.echo(
            f"{flag.kind}\t{flag.subject}\t{flag.flagged_at:%Y-%m-%d %H:%M}\t"
            f"precision {flag.measured.get('value')}\t{state}"
        )


@flags_group.command("clear")
@click.argument("kind", type=click.Choice(["rule", "lesson"]))
@click.argument("subject")
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def flags_clear(kind: str, subject: str, label: str | None) -> None:
    """Clear the open flag on KIND (rule or lesson) SUBJECT (its id), once it was revised."""
    with checked_database() as db:
        try:
            _flag_service(db).clear(cli_principal(label), kind, subject)
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"cleared {kind} {subject}")
