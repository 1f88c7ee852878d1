"""`cairn lessons …`: the review workflow from the command line."""

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from core.access import Principal
from core.errors import ConflictError, ForbiddenError, NotFoundError
from core.lesson import Lesson, LessonStatus, Mandate
from core.recurrence import Recurrence
from router.access.operator import cli_principal
from router.cli.support import database, load_settings, require_schema
from router.lessons import file as lessons_file
from router.lessons import transfer as lessons_transfer
from router.lessons.file import LessonFileError
from router.lessons.service import LessonService
from store.search import SearchRequest
from store.search_query import QueryTooLongError


def _run(action: Callable[[LessonService], Any]) -> Any:
    settings = load_settings()
    require_schema(settings)
    with database(settings) as db:
        try:
            return action(LessonService(db))
        except (NotFoundError, ConflictError, ForbiddenError, QueryTooLongError) as exc:
            raise click.ClickException(str(exc)) from exc


def _recurrence_line(found: tuple[Recurrence, ...]) -> str:
    if not found:
        return "recurrences: none"
    last = found[-1]
    placed = sum(r.placed for r in found)
    states = ", ".join(f"{state} {n}" for state, n in sorted(last.states.items()))
    return (
        f"recurrences: {len(found)}, placed beforehand in {placed}; latest {last.incident_ref} "
        f"at {last.detected_at:%Y-%m-%d %H:%M} UTC against v{last.lesson_version}"
        + (f", its placements: {states}" if states else ", not placed for it")
    )


def _show(lesson: Lesson) -> None:
    click.echo(json.dumps(lesson.model_dump(mode="json"), indent=2))


def _line(lesson: Lesson) -> str:
    due = f", review by {lesson.review_by}" if lesson.review_by else ""
    return (
        f"{lesson.id}@{lesson.version}\t{lesson.status.value}\t{lesson.mandate.value}\t"
        f"{lesson.owner}{due}\t{lesson.title}"
    )


def _operator(_ctx: click.Context, _param: click.Parameter, label: str | None) -> Principal:
    return cli_principal(label)


actor_option = click.option(
    "--as",
    "actor",
    default=None,
    callback=_operator,
    help="A label recorded beside the acting operator (cli:<os user>) in the audit log.",
)


@click.group("lessons")
def lessons_group() -> None:
    """Capture, review, publish, revise and retire lessons."""


@lessons_group.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in LessonStatus]),
    default=None,
    help="Only lessons in this status (default: every status).",
)
def list_lessons(status: str | None) -> None:
    """One line per lesson: id@version, status, mandate, owner, title."""
    found = _run(lambda s: s.list(LessonStatus(status) if status else None))
    for lesson in found:
        click.echo(_line(lesson))


@lessons_group.command("show")
@click.argument("lesson_id")
@click.option(
    "--version", type=int, default=None, help="A published version (default: the working copy)."
)
def show(lesson_id: str, version: int | None) -> None:
    """The working copy (or one published version) as JSON, and a recurrence line on stderr.

    LESSON_ID is the lesson's id (without @version).
    """
    if version is None:
        lesson, _ = _run(lambda s: s.get(lesson_id))
    else:
        lesson = _run(lambda s: s.version(lesson_id, version))
    _show(lesson)
    # stderr, so that stdout stays one JSON document for scripts.
    click.echo(_recurrence_line(_run(lambda s: s.recurrences(lesson_id))), err=True)


STATUS_CHOICE = click.Choice([s.value for s in LessonStatus])


@lessons_group.command("search")
@click.argument("query", required=False, default="")
@click.option(
    "--status", "statuses", multiple=True, type=STATUS_CHOICE, help="Only this status (repeat)."
)
@click.option("--tag", "tags", multiple=True, help="Only lessons with this tag (repeat).")
@click.option(
    "--service", "services", multiple=True, help="Only lessons for this service (repeat)."
)
@click.option(
    "--mandate",
    "mandates",
    multiple=True,
    type=click.Choice([m.value for m in Mandate]),
    help="Only lessons with this mandate (repeat).",
)
@click.option("--owner", "owners", multiple=True, help="Only lessons this owner owns (repeat).")
@click.option(
    "--limit",
    type=click.IntRange(1, 100),
    default=20,
    show_default=True,
    help="Lessons per page.",
)
@click.option(
    "--offset",
    type=click.IntRange(0),
    default=0,
    help="Lessons to skip: the next page's offset is printed on stderr.",
)
@click.option("--facets", is_flag=True, help="Also print counts by status, tag, service, ...")
def search(
    query: str,
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    services: tuple[str, ...],
    mandates: tuple[str, ...],
    owners: tuple[str, ...],
    limit: int,
    offset: int,
    facets: bool,
) -> None:
    """Full-text search: words (all must occur), "a phrase", `or`, -excluded; best first.

    QUERY is the search text (default: list every lesson). A filter given more than once
    matches any of its values; different filters must all match.
    """
    wanted = SearchRequest(
        text=query,
        filters={
            "status": statuses,
            "tag": tags,
            "service": services,
            "mandate": mandates,
            "owner": owners,
        },
        limit=limit,
        offset=offset,
    )
    page = _run(lambda s: s.search(wanted))
    for hit in page.hits:
        click.echo(_line(hit.lesson))
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    click.echo(f"{page.total} found{more}", err=True)
    if facets:
        for name, counts in page.facets.items():
            click.echo(f"{name}: " + ", ".join(f"{v} {n}" for v, n in counts.items()))


@lessons_group.command("schema")
def schema() -> None:
    """The JSON Schema of the export/import file (each entry is a Lesson)."""
    click.echo(json.dumps(lessons_file.schema(), indent=2))


@lessons_group.command("export")
@click.option(
    "--status", type=STATUS_CHOICE, default=None, help="Only this status (default: every status)."
)
@click.option(
    "--format",
    "kind",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
def export(status: str | None, kind: lessons_file.Kind) -> None:
    """Write lessons (published versions and working copies) to stdout as YAML or JSON."""
    chosen = LessonStatus(status) if status else None
    entries = _run(lambda s: lessons_transfer.export(s.db, chosen))
    click.echo(lessons_file.dump(entries, kind), nl=False)


@lessons_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every entry and report; write nothing.")
@click.option(
    "--trust-reviews",
    is_flag=True,
    help="Keep published entries without a review record published (else they become drafts).",
)
@actor_option
def import_(file: Path, dry_run: bool, trust_reviews: bool, actor: Principal) -> None:
    """Import an export file: every entry valid and none conflicting, or nothing is imported.

    FILE is a YAML or JSON file as written by `cairn lessons export`.
    """
    text = file.read_text(encoding="utf-8")
    try:
        entries = lessons_file.load(text, str(file), lessons_file.kind_of(file.name, text))
    except LessonFileError as exc:
        raise click.ClickException(f"nothing imported:\n{exc}") from exc
    report = _run(
        lambda s: lessons_transfer.import_lessons(
            s.db, entries, actor, source=str(file), dry_run=dry_run, trust_reviews=trust_reviews
        )
    )
    click.echo(report.summary())


@lessons_group.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@actor_option
def create(file: Path, actor: Principal) -> None:
    """Capture a draft from a JSON file (the Lesson schema, without version or status).

    FILE is the JSON file holding the lesson.
    """
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        lesson = Lesson.model_validate({**data, "version": 1, "status": "draft"}, strict=False)
    except (ValueError, ValidationError) as exc:
        raise click.ClickException(f"{file}: not a lesson: {exc}") from exc
    click.echo(_line(_run(lambda s: s.create(lesson, actor))))


@lessons_group.command("edit")
@click.argument("lesson_id")
@click.option("--set", "pairs", multiple=True, help="field=JSON value, e.g. title='\"New\"'.")
@actor_option
def edit(lesson_id: str, pairs: tuple[str, ...], actor: Principal) -> None:
    """Change fields of a draft or a lesson in review.

    LESSON_ID is the lesson's id.
    """
    changes: dict[str, Any] = {}
    for pair in pairs:
        field, _, raw = pair.partition("=")
        try:
            changes[field] = json.loads(raw)
        except ValueError:
            changes[field] = raw  # a bare string
    click.echo(_line(_run(lambda s: s.edit(lesson_id, changes, actor))))


def _step(name: str, help_text: str) -> None:
    @lessons_group.command(name, help=f"{help_text}\n\nLESSON_ID is the lesson's id.")
    @click.argument("lesson_id")
    @actor_option
    def command(lesson_id: str, actor: Principal) -> None:
        result = _run(lambda s: getattr(s, name)(lesson_id, actor))
        if name == "retire":
            lesson, withdrawn = result
            click.echo(f"{_line(lesson)}\t{withdrawn} placements withdrawn")
        else:
            click.echo(_line(result))


for _name, _help in (
    ("submit", "Ask for review."),
    ("publish", "Freeze the approved lesson as a new immutable version."),
    ("revise", "Open the next version as a draft; the published one stays in force."),
    ("retire", "Retire the lesson and withdraw its open placements."),
):
    _step(_name, _help)


@lessons_group.command("approve")
@click.argument("lesson_id")
@click.option("--notes", default="", help="The transferability check, in words.")
@click.option(
    "--mandate",
    type=click.Choice([m.value for m in Mandate]),
    default=None,
    help="Set how binding the lesson is when placed (default: keep the proposed mandate).",
)
@actor_option
def approve(lesson_id: str, notes: str, mandate: str | None, actor: Principal) -> None:
    """Record the reviewer's transferability check (not by the lesson's capturer).

    LESSON_ID is the id of a lesson in review.
    """
    chosen = Mandate(mandate) if mandate else None
    click.echo(_line(_run(lambda s: s.approve(lesson_id, actor, notes=notes, mandate=chosen))))


@lessons_group.command("due")
@click.option(
    "--on",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Check as of this day, YYYY-MM-DD (default: today).",
)
def due(on: Any) -> None:
    """Published lessons whose review-by date has come (today, or --on DATE)."""
    day = on.date() if on is not None else date.today()
    found = _run(lambda s: s.list(LessonStatus.PUBLISHED))
    for lesson in sorted(found, key=lambda x: (x.review_by or date.max, x.id)):
        if lesson.review_by is not None and lesson.review_by <= day:
            click.echo(_line(lesson))
