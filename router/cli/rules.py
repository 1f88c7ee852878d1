"""`cairn rules …`: schema, validate, test (explain) and backtest rule files."""

import json
from collections.abc import Sequence
from pathlib import Path

import click
from pydantic import TypeAdapter, ValidationError

from core.events import WorkItemEvent
from core.lesson import Lesson
from core.work import WorkItem
from router.cli.support import database, load_settings, require_schema
from router.ruleset.backtest import NO_TEAM, OverBudget
from router.ruleset.backtest import backtest as run_backtest
from router.ruleset.source import load_rule_set
from rules import reference
from rules.loader import RuleSet, RuleSetError
from rules.model import Pack, format_duration, parse_duration
from store import lessons

_LESSONS: TypeAdapter[Lesson | list[Lesson]] = TypeAdapter(Lesson | list[Lesson])


def _load(path: Path) -> RuleSet:
    try:
        return load_rule_set(path)
    except RuleSetError as exc:
        raise click.ClickException(f"invalid rules:\n{exc}") from exc


def _read_json(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {what} {path}: {exc.strerror}") from exc


def _work_item(path: Path) -> WorkItem:
    raw = _read_json(path, "work item")
    try:
        data = json.loads(raw)
        if isinstance(data, dict) and data.get("type") == "work_item":
            return WorkItemEvent.model_validate(data, strict=False).work_item
        return WorkItem.model_validate(data, strict=False)
    except (ValueError, ValidationError) as exc:
        raise click.ClickException(f"{path}: not a work item: {exc}") from exc


def _published_lessons(files: Sequence[Path]) -> list[Lesson]:
    if files:
        found: list[Lesson] = []
        for path in files:
            try:
                parsed = _LESSONS.validate_json(_read_json(path, "lesson"), strict=False)
            except ValidationError as exc:
                raise click.ClickException(f"{path}: not a lesson: {exc}") from exc
            found.extend(parsed if isinstance(parsed, list) else [parsed])
        return found
    settings = load_settings()
    require_schema(settings)
    with database(settings) as opened, opened.transaction() as session:
        return lessons.published(session)


@click.group("rules")
def rules_group() -> None:
    """Routing rules: schema, validate, test, backtest."""


@rules_group.command("schema")
def schema() -> None:
    """Print the JSON Schema of a rule file (for editor autocompletion)."""
    click.echo(json.dumps(Pack.model_json_schema(), indent=2))


@rules_group.command("validate")
@click.argument("path", type=click.Path(path_type=Path))
def validate(path: Path) -> None:
    """Check a rule file or directory; every problem is reported as file:line:column.

    PATH is a rule file, or a directory whose *.yaml / *.yml files are read.
    """
    rule_set = _load(path)
    count = sum(len(pack.rules) for pack in rule_set.packs)
    click.echo(f"ok: {len(rule_set.packs)} packs, {count} rules, version {rule_set.version}")


@rules_group.command("test")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Rule file or directory to explain.",
)
@click.option(
    "--work-item",
    "work_item_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Work item JSON file (a WorkItem, or a work_item event as the connectors record it).",
)
@click.option(
    "--lesson",
    "lesson_paths",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Lesson JSON file(s); default: the published lessons in CAIRN_DATABASE_URL.",
)
@click.option("--placed", multiple=True, help="Lesson ids already placed in the work item.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def test(
    rules_path: Path,
    work_item_path: Path,
    lesson_paths: tuple[Path, ...],
    placed: tuple[str, ...],
    fmt: str,
) -> None:
    """Explain, for every lesson, which rule places it or the condition that excluded it."""
    rule_set = _load(rules_path)
    item = _work_item(work_item_path)
    found = _published_lessons(lesson_paths)
    routing = reference.route(rule_set, found, item, already_placed=placed, explain=True)
    rows = [
        {
            "lesson": f"{d.lesson_id}@{d.lesson_version}",
            "placed": True,
            "rule": d.rule_id,
            "form": d.form.value,
            "mandate": d.mandate.value,
            "due": None if d.due_in is None else format_duration(d.due_in),
        }
        for d in routing.placements
    ] + [{"lesson": s.lesson_id, "placed": False, "reason": s.reason} for s in routing.skipped]
    if fmt == "json":
        click.echo(
            json.dumps({"rule_set": rule_set.version, "work_item": item.ref, "lessons": rows})
        )
        return
    click.echo(f"{item.ref} under rule set {rule_set.version} ({len(found)} lessons)")
    for row in rows:
        if row["placed"]:
            click.echo(
                f"  PLACE {row['lesson']} by {row['rule']} as {row['form']}, {row['mandate']}"
                + (f", due in {row['due']}" if row["due"] else "")
            )
        else:
            click.echo(f"  SKIP  {row['lesson']}: {row['reason']}")


def _report_budget(over: list[OverBudget]) -> None:
    """Work items whose placements would pass their team's fatigue budget (required lessons
    always go in, grouped into one item past it), worst first, and how many would be grouped."""
    if not over:
        click.echo("no work item would pass its budget")
        return
    click.echo(
        f"{len(over)} work items would pass their budget "
        "(the required lessons past it are grouped into one item each):"
    )
    for row in over[:20]:
        where = row.team if row.team == NO_TEAM else f"({row.team})"
        click.echo(
            f"  ! {row.ref} {where}: {row.items} items, budget {row.budget} (+{row.extra}), "
            f"{row.grouped} grouped into one item"
        )
    if len(over) > 20:
        click.echo(f"  ! … and {len(over) - 20} more")
    grouped = sum(row.grouped for row in over)
    click.echo(f"  {grouped} lessons would be grouped, in {len(over)} grouped items")


@rules_group.command("backtest")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Draft rule file or directory to replay.",
)
@click.option("--since", default="30d", show_default=True, help="Window such as 30d or 2w.")
@click.option(
    "--against",
    type=click.Path(path_type=Path),
    default=None,
    help="Rules to compare with; default: CAIRN_RULES_PATH (the active rules).",
)
def backtest(rules_path: Path, since: str, against: Path | None) -> None:
    """Replay stored work-item events through draft rules; writes nothing."""
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = load_settings()
    require_schema(settings)
    draft = _load(rules_path)
    active_path = against or settings.rules_path
    active = _load(active_path) if active_path is not None else None
    with database(settings) as opened:
        result = run_backtest(opened, draft, active, window)
    click.echo(
        f"{result.events} work-item events since {since}, {result.lessons} published lessons; "
        f"draft {result.draft_version} vs "
        + (f"active {result.active_version}" if active else "no active rules")
    )
    click.echo(f"{'team':<24}{'draft':>8}{'active':>8}{'change':>8}")
    for row in result.teams:
        click.echo(f"{row.team:<24}{row.draft:>8}{row.active:>8}{row.change:>+8}")
    _report_budget(result.over_budget)
    for label, rows in (("+", result.added), ("-", result.removed)):
        for team, ref, lesson_id in rows[:50]:
            where = team if team == NO_TEAM else f"({team})"
            click.echo(f"  {label} {lesson_id} in {ref} {where}")
        if len(rows) > 50:
            click.echo(f"  {label} … and {len(rows) - 50} more")
