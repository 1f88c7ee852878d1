"""Blameless review of a draft: its findings and weak-capture warnings, one-action redaction,
an explicit keep, and the restricted provenance (owners of the lesson's team and admins only).

A redaction replaces the text in every field of the working copy; the original goes to the
restricted provenance, which no placement, export or API answer for other roles carries. The
publish step refuses a lesson that still names someone its sources name (or @-mentions anyone)
unless a reviewer kept that finding.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.access import Permission, Principal
from core.base import utcnow
from core.blameless import (
    DEFAULT_MIN_STATEMENT,
    DEFAULT_SLOGANS,
    CaptureRecord,
    Decision,
    DecisionRecord,
    Finding,
    FindingKind,
    Known,
    Original,
    Restricted,
    blocking,
    redact,
    scan,
    warnings,
)
from core.errors import ConflictError, ForbiddenError, NotFoundError
from core.lesson import Lesson, LessonStatus
from store import audit, captures, lessons
from store.engine import Database


@dataclass(frozen=True, slots=True)
class Weak:
    """The weak-capture thresholds (settings)."""

    min_statement: int = DEFAULT_MIN_STATEMENT
    slogans: Sequence[str] = DEFAULT_SLOGANS


def _known(session: Session, lesson_id: str) -> tuple[CaptureRecord | None, Restricted]:
    return captures.get(session, lesson_id), captures.restricted(session, lesson_id) or Restricted()


def check_names(session: Session, lesson: Lesson) -> None:
    """ConflictError when a captured lesson still names people nobody decided to keep."""
    record, secret = _known(session, lesson.id)
    if record is None:
        return
    left = blocking(scan(lesson, secret.known), record.kept)
    if left:
        ids = ", ".join(f.id for f in left)
        raise ConflictError(
            f"lesson {lesson.id!r} still names people ({ids}): redact each finding, or keep it "
            "explicitly, before publishing"
        )


def _finding_json(finding: Finding, kept: set[str]) -> dict[str, Any]:
    state = "kept" if finding.id in kept else "open"
    return {**finding.model_dump(mode="json"), "state": state}


class CaptureReview:
    """The findings, decisions and restricted provenance of lessons under review."""

    def __init__(self, db: Database, weak: Weak | None = None) -> None:
        self.db = db
        self.weak = weak or Weak()

    def _lesson(self, session: Session, lesson_id: str) -> Lesson:
        lesson = lessons.get(session, lesson_id)
        if lesson is None:
            raise NotFoundError(f"lesson {lesson_id!r} does not exist")
        return lesson

    def report(self, lesson_id: str) -> dict[str, Any]:
        """What a reviewer sees: each finding (open or kept), decisions, warnings, sources."""
        with self.db.transaction() as session:
            lesson = self._lesson(session, lesson_id)
            record, secret = _known(session, lesson_id)
        kept = set(record.kept if record else ())
        found = scan(lesson, secret.known)
        weak = warnings(lesson, min_statement=self.weak.min_statement, slogans=self.weak.slogans)
        return {
            "lesson_id": lesson_id,
            "captured": record is not None,
            "source": record.source_ref if record else None,
            "findings": [_finding_json(f, kept) for f in found],
            "decisions": [d.model_dump(mode="json") for d in record.decisions] if record else [],
            "warnings": [w.model_dump(mode="json") for w in weak],
            "problems": list(record.problems) if record else [],
            "sources": [s.model_dump(mode="json") for s in lesson.provenance.sources],
            "notified": list(record.notified) if record else [],
            "publishable": not blocking(found, kept) or record is None,
        }

    def decide(
        self, lesson_id: str, finding_id: str, decision: Decision, reviewer: Principal
    ) -> dict[str, Any]:
        """Redact (the text goes, the original to the restricted provenance) or keep a finding."""
        if not reviewer.can(Permission.REVIEW):
            raise ForbiddenError(f"{reviewer.id} may not decide on findings of lessons")
        with self.db.transaction() as session:
            now = utcnow()
            lesson = self._lesson(session, lesson_id)
            if lesson.status not in (LessonStatus.DRAFT, LessonStatus.IN_REVIEW):
                raise ConflictError(
                    f"lesson {lesson_id!r} is {lesson.status.value}: revise it to change its text"
                )
            record, secret = _known(session, lesson_id)
            record = record or CaptureRecord(lesson_id=lesson_id, source_ref=lesson_id)
            found = {f.id: f for f in scan(lesson, secret.known)}
            finding = found.get(finding_id)
            if finding is None:
                raise NotFoundError(f"lesson {lesson_id!r} has no open finding {finding_id!r}")
            entry = DecisionRecord(
                finding=finding.id,
                kind=finding.kind,
                decision=decision,
                by=reviewer.id,
                at=now,
                fields=finding.fields,
                term=finding.term if decision == Decision.KEPT else None,
            )
            if decision == Decision.REDACTED:
                lesson, originals = redact(lesson, finding, _with_term(secret.known, finding))
                kept = [
                    Original(finding=finding.id, field=where, text=text, by=reviewer.id, at=now)
                    for where, text in originals.items()
                ]
                secret = secret.model_copy(
                    update={
                        "redacted": (*secret.redacted, finding),
                        "originals": (*secret.originals, *kept),
                    }
                )
                lessons.save(session, lesson, now)
            decisions = tuple(d for d in record.decisions if d.finding != finding.id)
            record = record.model_copy(
                update={
                    "decisions": (*decisions, entry),
                    "findings": tuple(scan(lesson, secret.known)),
                }
            )
            captures.put(session, record, secret, now)
            audit.record_by(
                session,
                reviewer,
                f"lesson.finding_{decision.value}",
                lesson_id,
                {"finding": finding.id, "kind": finding.kind.value, "fields": list(finding.fields)},
                now,
            )
        return self.report(lesson_id)

    def restricted(self, lesson_id: str, actor: Principal) -> dict[str, Any]:
        """The restricted provenance: people the sources name and every redacted original."""
        with self.db.transaction() as session:
            lesson = self._lesson(session, lesson_id)
            if not actor.may_author_for(lesson.owner):
                raise ForbiddenError(
                    f"{actor.id} may not read the restricted provenance of team "
                    f"{lesson.owner!r}'s lessons"
                )
            secret = captures.restricted(session, lesson_id)
        if secret is None:
            raise NotFoundError(f"lesson {lesson_id!r} was not captured from work")
        return {
            "lesson_id": lesson_id,
            "people": [p.model_dump(mode="json") for p in secret.people],
            "redacted": [f.model_dump(mode="json") for f in secret.redacted],
            "originals": [o.model_dump(mode="json") for o in secret.originals],
        }


def _with_term(known: Known, finding: Finding) -> Known:
    """The names to replace: a person finding's own term is always one of them."""
    if finding.kind != FindingKind.PERSON or finding.term in known.names:
        return known
    return Known(names=(*known.names, finding.term), logins=known.logins)
