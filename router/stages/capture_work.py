"""Stage `capture_work`: finished work (a postmortem ticket, a labelled issue or discussion, a
postmortem file a merged pull request added) becomes, or refreshes, a draft lesson.

An effect: the source's system is read first (remote links and commenters, a pull request's
files at the merge commit), then the draft, its blameless findings and the restricted
provenance are written together. Stage `capture_notify` (only when the setting is on) tells the
source's author where the draft went, once.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy.orm import Session

from core.blameless import CaptureRecord, Restricted, redact_terms, scan
from core.errors import PayloadError
from core.lesson import Lesson, LessonStatus
from core.work_capture import (
    CAPTURED_BY,
    CaptureConfig,
    Person,
    SourceDocument,
    SourceKind,
    draft_from,
    lesson_id_for,
    refresh,
)
from router.pipeline import Effect, StageContext
from store import audit, captures, lessons, teams

TOPIC = "capture_work"
NOTIFY_TOPIC = "capture_notify"


class SourceReader(Protocol):
    """Reads a work source's system for what its webhook left out; tells its author."""

    def read(self, source: SourceDocument) -> list[SourceDocument]:
        """The source completed (a merged pull request: one document per matching file)."""
        ...

    def notify(self, source: SourceDocument, lesson_id: str, url: str) -> bool:
        """Comment on the source with the draft's link; False when already done."""
        ...


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """What the capture stages need from the service's settings."""

    config: CaptureConfig
    project_teams: Mapping[str, str]
    public_url: str


def _document(payload: dict[str, Any]) -> SourceDocument:
    try:
        return SourceDocument.model_validate(payload.get("document"), strict=False)
    except ValidationError as exc:
        raise PayloadError(f"capture message: {exc.error_count()} invalid fields") from exc


def lesson_url(public_url: str, lesson_id: str) -> str:
    """Where a reviewer finds the draft."""
    return f"{public_url.rstrip('/')}/ui/lessons/{lesson_id}"


def make_stage(readers: Mapping[str, SourceReader], settings: CaptureSettings) -> Effect:
    """The capture effect, reading through `readers` (system → reader; none: webhook only)."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> SourceDocument | None:
        document = _document(payload)
        if not settings.config.wants(document):
            return None
        if document.kind == SourceKind.PULL and document.system not in readers:
            audit.record(
                ctx.session,
                actor=CAPTURED_BY,
                action="lesson.capture_unreadable",
                subject=document.ref,
                details={"reason": "no GitHub access configured to read the files"},
                now=ctx.now,
            )
            return None
        return document

    def perform(document: SourceDocument) -> list[SourceDocument]:
        reader = readers.get(document.system)
        return [document] if reader is None else reader.read(document)

    def record(ctx: StageContext, document: SourceDocument, read: list[SourceDocument]) -> None:
        for source in read:
            lesson_id = _capture(ctx, source, settings)
            if lesson_id is not None and settings.config.notify_author:
                payload = {"document": source.model_dump(mode="json"), "lesson_id": lesson_id}
                ctx.emit(NOTIFY_TOPIC, payload, key=source.ref)

    return Effect(prepare=prepare, perform=perform, record=record)


def _owner(session: Session, source: SourceDocument, settings: CaptureSettings) -> str | None:
    if source.team:
        return source.team
    if source.project in settings.project_teams:
        return settings.project_teams[source.project]
    author = source.author
    if author is not None:
        found = teams.find(session, login=(source.system, author.login))
        if found:
            return found[0][0]
    return None


def _known(session: Session, people: tuple[Person, ...], system: str) -> tuple[Person, ...]:
    """The source's people, with the display names the team map knows for their logins."""
    named = list(people)
    for person in people:
        for _team, member in teams.find(session, login=(system, person.login)):
            if member.name:
                named.append(Person(login=person.login, name=member.name, role=person.role))
    unique = {(p.login, p.name): p for p in named}
    return tuple(unique.values())


def _capture(ctx: StageContext, source: SourceDocument, settings: CaptureSettings) -> str | None:
    """Create or refresh the draft for one source; the lesson id when a draft was created."""
    session, now = ctx.session, ctx.now
    lesson_id = lesson_id_for(source.ref)
    existing = lessons.get(session, lesson_id)
    record = captures.get(session, lesson_id)
    secret = captures.restricted(session, lesson_id) or Restricted()
    people = _known(session, (*secret.people, *source.people), source.system)
    secret = secret.model_copy(update={"people": people})
    owner = _owner(session, source, settings)
    fresh, problem = draft_from(source, now, owner=owner, headings=settings.config.headings)
    details: dict[str, Any] = {"source": source.ref, "version": source.version}
    created = None
    if existing is None:
        if source.refresh_only:
            return None
        lesson: Lesson = redact_terms(fresh, secret.redacted, secret.known)
        lessons.add(session, lesson, now)
        action, created = "lesson.captured", lesson_id
    elif existing.status in (LessonStatus.DRAFT, LessonStatus.IN_REVIEW):
        lesson = redact_terms(refresh(existing, source, fresh, now), secret.redacted, secret.known)
        lessons.save(session, lesson, now)
        action = "lesson.capture_refreshed"
    else:
        action, lesson = "lesson.capture_skipped", existing
    if action != "lesson.capture_skipped":
        findings = tuple(scan(lesson, secret.known))
        problems = (problem,) if problem else ()
        base = record or CaptureRecord(lesson_id=lesson_id, source_ref=source.ref)
        captures.put(
            session,
            base.model_copy(update={"findings": findings, "problems": problems}),
            secret,
            now,
        )
        details["findings"] = len(findings)
    audit.record(
        session, actor=CAPTURED_BY, action=action, subject=lesson_id, details=details, now=now
    )
    return created


def make_notify_stage(readers: Mapping[str, SourceReader], public_url: str) -> Effect:
    """Tell the source's author where the draft went (one comment, found again on a retry)."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> tuple[SourceDocument, str] | None:
        document = _document(payload)
        lesson_id = payload.get("lesson_id")
        if not isinstance(lesson_id, str):
            raise PayloadError("capture_notify message without a lesson_id")
        if document.system not in readers:
            return None
        return document, lesson_id

    def perform(plan: tuple[SourceDocument, str]) -> bool:
        document, lesson_id = plan
        return readers[document.system].notify(
            document, lesson_id, lesson_url(public_url, lesson_id)
        )

    def record(ctx: StageContext, plan: tuple[SourceDocument, str], posted: bool) -> None:
        document, lesson_id = plan
        found = captures.get(ctx.session, lesson_id)
        secret = captures.restricted(ctx.session, lesson_id)
        if found is not None and secret is not None and document.ref not in found.notified:
            updated = found.model_copy(update={"notified": (*found.notified, document.ref)})
            captures.put(ctx.session, updated, secret, ctx.now)
        audit.record(
            ctx.session,
            actor=CAPTURED_BY,
            action="lesson.capture_notified",
            subject=lesson_id,
            details={"source": document.ref, "posted": posted},
            now=ctx.now,
        )

    return Effect(prepare=prepare, perform=perform, record=record)
