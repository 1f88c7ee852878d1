"""`cairn report compliance`, `cairn waivers …`, `cairn evidence export|verify`."""

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from core.compliance import Cell, NotReached
from core.errors import ConflictError, NotFoundError, describe_validation_error
from router.access.operator import cli_principal
from router.access.tokens import parse_expiry
from router.cli.report import FORMAT, filters_of, report_group, scope_options, write_rows
from router.cli.support import checked_database
from router.reports.compliance import ComplianceService, MatrixCell
from router.reports.evidence import EvidenceService, verify_bundle
from router.reports.export import compliance_csv

_SHORT = {
    Cell.VERIFIED: "verified",
    Cell.ACKNOWLEDGED: "ack",
    Cell.OPEN: "OPEN",
    Cell.OVERDUE: "OVERDUE",
    Cell.DISMISSED: "dismissed",
    Cell.WAIVED: "waived",
    Cell.NOT_REACHED: "-",
}
_NOT_REACHED = {
    NotReached.SUPPRESSED: "- suppressed",
    NotReached.BUDGET: "- budget",
    NotReached.NO_RULE: "- no rule",
    NotReached.NO_WORK: "- no work",
    NotReached.NOT_DELIVERED: "- undelivered",
}


@report_group.command("compliance")
@scope_options
@FORMAT
def compliance(fmt: str, **options: Any) -> None:
    """Mandated lessons × teams: verified, ack(nowledged), OPEN, OVERDUE, dismissed, waived,
    or - (not reached: nothing reached that team's work in the period) with why: suppressed,
    budget (the fatigue budget left it out), no rule (the team had work and no rule selected
    it), no work (the team had none), undelivered (placed, never delivered or withdrawn).

    CSV and JSON add each cell's placements, reason and explanation."""
    options.pop("repositories", None)
    with checked_database() as db:
        matrix = ComplianceService(db).matrix(filters_of(options), detail=fmt != "table")
    if fmt == "json":
        click.echo(json.dumps(matrix.as_dict(), indent=2))
        return
    if fmt == "csv":
        click.echo(compliance_csv(matrix), nl=False)
        return
    table = [
        {"lesson": lesson, **{t: _short(matrix.cells[(lesson, t)]) for t in matrix.teams}}
        for lesson in matrix.lessons
    ]
    write_rows(table, ["lesson", *matrix.teams], "table")


def _short(cell: MatrixCell) -> str:
    reason = cell.reason()
    return _SHORT[cell.cell] if reason is None else _NOT_REACHED[reason]


@click.group("waivers")
def waivers_group() -> None:
    """Exemptions from mandated lessons, approved and dated."""


@waivers_group.command("grant")
@click.option("--lesson", required=True, help="The mandated lesson's id.")
@click.option("--team", required=True, help="The team exempted.")
@click.option("--work-item", default=None, help="Only this work item (else all the team's).")
@click.option("--reason", required=True, help="Why, in words an auditor can read.")
@click.option("--expires", default="90d", show_default=True, help="90d, 12h or 30m; at most 366d.")
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def grant(
    lesson: str, team: str, work_item: str | None, reason: str, expires: str, label: str | None
) -> None:
    """Record a waiver approved by the operator running the command."""
    try:
        lasts = parse_expiry(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    if lasts is None:
        raise click.BadParameter("a waiver always ends", param_hint="--expires")
    with checked_database() as db:
        try:
            waiver = ComplianceService(db).waive(
                cli_principal(label), lesson, team, reason, lasts, work_item
            )
        except ValidationError as exc:
            raise click.ClickException(describe_validation_error(exc)) from exc
        except (ConflictError, NotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"{waiver.id}\t{lesson}\t{team}\tuntil {waiver.expires_at:%Y-%m-%d %H:%M} UTC")


@waivers_group.command("list")
def list_waivers() -> None:
    """Every waiver: id, lesson, team, work item, approver, validity, reason."""
    with checked_database() as db:
        for w in ComplianceService(db).waivers():
            click.echo(
                f"{w.id}\t{w.lesson_id}\t{w.team}\t{w.work_item_ref or '*'}\t{w.approved_by}\t"
                f"{w.created_at:%Y-%m-%d}..{w.expires_at:%Y-%m-%d}\t{w.reason}"
            )


@click.group("evidence")
def evidence_group() -> None:
    """Evidence bundles for auditors: export for a period, verify offline."""


@evidence_group.command("export")
@scope_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the bundle (JSON).",
)
def export(out: Path, **options: Any) -> None:
    """Write the matrix, each placement's evidence chain and the audit entries behind them."""
    options.pop("repositories", None)
    with checked_database() as db:
        bundle = EvidenceService(db).bundle(filters_of(options))
    out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(
        f"{out}: {len(bundle['placements'])} placements, {len(bundle['lessons'])} lesson "
        f"versions, {len(bundle['audit'])} audit entries, head {bundle['head']['seq']} "
        f"{bundle['head']['hash']}"
    )


@evidence_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(file: Path) -> None:
    """Check FILE without any database: lesson hashes, the audit entries' chain, citations."""
    try:
        bundle = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise click.ClickException(f"{file}: not JSON ({type(exc).__name__})") from exc
    if not isinstance(bundle, dict):
        raise click.ClickException(f"{file}: not an evidence bundle")
    try:
        problems = verify_bundle(bundle)
        summary = (
            f"{len(bundle['lessons'])} lesson versions, {len(bundle['placements'])} placements, "
            f"{len(bundle['audit'])} audit entries ending at head {bundle['head']['seq']} "
            f"{bundle['head']['hash']}"
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ValidationError) as exc:
        # Whatever shape the file has, a broken one is named, never a traceback.
        raise click.ClickException(
            f"{file}: malformed bundle ({type(exc).__name__}: {exc})"
        ) from exc
    if problems:
        for problem in problems:
            click.echo(f"{file}: {problem}")
        raise SystemExit(1)
    click.echo(f"{file}: verified: {summary}")
