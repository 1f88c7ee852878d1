"""Lesson review workflow over the store: each step is one transaction with its audit entry.

Every step takes the acting principal as the server established it, checks its right to act on
that lesson (owners only on their teams' lessons; reviewers approve and publish), and records
it: who captured, submitted, approved and published a lesson is never taken from a request.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from core import lifecycle
from core.access import Permission, Principal
from core.base import utcnow
from core.errors import ForbiddenError, NotFoundError
from core.lesson import Applicability, Lesson, LessonStatus, Mandate, content_hash
from core.placement import EmbeddingForm, PlacementState
from core.recurrence import Recurrence
from router.lessons import findings
from router.stages import diffuse, revision
from router.stages.embed import TOPIC as EMBED_TOPIC
from store import audit, lessons, outbox, placements, recurrences, search
from store.engine import Database
from store.search import SearchPage, SearchRequest

OPEN = (PlacementState.PLANNED, PlacementState.EMBEDDED, PlacementState.OVERDUE)


def check_author(actor: Principal, team: str) -> None:
    """ForbiddenError unless `actor` may change lessons owned by `team`."""
    if not actor.may_author_for(team):
        raise ForbiddenError(f"{actor.id} may not change lessons owned by team {team!r}")


def check_reviewer(actor: Principal) -> None:
    """ForbiddenError unless `actor` holds a role that approves and publishes."""
    if not actor.can(Permission.REVIEW):
        raise ForbiddenError(f"{actor.id} may not approve or publish lessons")


class LessonService:
    """The operations the API and the CLI share."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _load(self, session: Session, lesson_id: str) -> Lesson:
        lesson = lessons.get(session, lesson_id)
        if lesson is None:
            raise NotFoundError(f"lesson {lesson_id!r} does not exist")
        return lesson

    def _step(
        self,
        lesson_id: str,
        actor: Principal,
        action: str,
        change: Callable[[Lesson], Lesson],
        *,
        reviewing: bool = False,
    ) -> Lesson:
        with self.db.transaction() as session:
            now = utcnow()
            current = self._load(session, lesson_id)
            if reviewing:
                check_reviewer(actor)
            else:
                check_author(actor, current.owner)
            updated = change(current)
            if not reviewing:
                check_author(actor, updated.owner)  # handing a lesson to another team too
            lessons.save(session, updated, now)
            audit.record_by(
                session,
                actor,
                f"lesson.{action}",
                lesson_id,
                {"version": updated.version, "status": updated.status.value},
                now,
            )
            return updated

    def create(self, lesson: Lesson, actor: Principal) -> Lesson:
        """Store a new draft, captured by `actor` now (whatever the lesson said)."""
        check_author(actor, lesson.owner)
        now = utcnow()
        provenance = lesson.provenance.model_copy(
            update={"captured_by": actor.id, "captured_at": now}
        )
        draft = lesson.model_copy(
            update={
                "status": LessonStatus.DRAFT,
                "version": 1,
                "review": None,
                "provenance": provenance,
                "authors": (actor.id,),
            }
        )
        with self.db.transaction() as session:
            lessons.add(session, draft, now)
            audit.record_by(session, actor, "lesson.created", draft.id, {"version": 1}, now)
        return draft

    def get(self, lesson_id: str) -> tuple[Lesson, list[int]]:
        """The working copy and the published version numbers."""
        with self.db.transaction() as session:
            return self._load(session, lesson_id), lessons.versions(session, lesson_id)

    def version(self, lesson_id: str, version: int) -> Lesson:
        """One published version, exactly as it was published."""
        with self.db.transaction() as session:
            found = lessons.get_version(session, lesson_id, version)
        if found is None:
            raise NotFoundError(f"lesson {lesson_id!r} has no published version {version}")
        return found

    def list(self, status: LessonStatus | None = None) -> list[Lesson]:
        """Working copies, optionally by status."""
        with self.db.transaction() as session:
            return lessons.list_lessons(session, status=status)

    def search(self, request: SearchRequest) -> SearchPage:
        """Full-text search over working copies, with facets."""
        with self.db.transaction() as session:
            return search.search(session, request)

    def recurrences(self, lesson_id: str) -> tuple[Recurrence, ...]:
        """Later incidents where the lesson applied, oldest first."""
        with self.db.transaction() as session:
            self._load(session, lesson_id)
            return tuple(recurrences.for_lesson(session, lesson_id))

    def edit(self, lesson_id: str, changes: dict[str, Any], actor: Principal) -> Lesson:
        """Change a draft or a lesson in review (withdraws any approval)."""
        return self._step(
            lesson_id, actor, "edited", lambda current: lifecycle.edit(current, changes, actor.id)
        )

    def submit(self, lesson_id: str, actor: Principal) -> Lesson:
        """Ask for review."""
        return self._step(lesson_id, actor, "submitted", lifecycle.submit)

    def approve(
        self,
        lesson_id: str,
        reviewer: Principal,
        *,
        notes: str = "",
        applicability: Applicability | None = None,
        mandate: Mandate | None = None,
    ) -> Lesson:
        """Record the reviewer's transferability check."""
        return self._step(
            lesson_id,
            reviewer,
            "approved",
            lambda current: lifecycle.approve(
                current,
                reviewer=reviewer.id,
                at=utcnow(),
                notes=notes,
                applicability=applicability,
                mandate=mandate,
            ),
            reviewing=True,
        )

    def publish(self, lesson_id: str, actor: Principal) -> Lesson:
        """Freeze an approved lesson as a new immutable version.

        Open placements of older versions are flagged in the audit log, and each work item
        holding one still in front of people (open or ticked) gets an `embed` message carrying
        the revision, in this transaction: the embed stage brings them to the new version as
        their rules say (`on_revision`), serialised per target.
        """
        check_reviewer(actor)
        with self.db.transaction() as session:
            now = utcnow()
            current = self._load(session, lesson_id)
            lifecycle.check_publishable(current)
            findings.check_names(session, current)  # no name reaches a target unless kept
            published = lessons.publish(session, lesson_id, now)
            digest = content_hash(published.model_dump(mode="json"))
            details = {"version": published.version, "content_hash": digest}
            audit.record_by(session, actor, "lesson.published", lesson_id, details, now)
            touched: set[str] = set()
            older = [
                p
                for p in placements.for_lesson(session, lesson_id)
                if p.lesson_version < published.version
            ]
            done = placements.finished(  # a template outlives its merged pull request
                session,
                [
                    p.id
                    for p in older
                    if revision.reaches(p) and p.form != EmbeddingForm.GITHUB_PR_TEMPLATE
                ],
            )
            for placement in older:
                if revision.reaches(placement) and placement.id not in done:
                    touched.add(placement.work_item_ref)
                if placement.state in OPEN:
                    audit.record_by(
                        session,
                        actor,
                        "placement.outdated",
                        placement.work_item_ref,
                        {
                            "placement": placement.id,
                            "lesson": lesson_id,
                            "placed_version": placement.lesson_version,
                            "current_version": published.version,
                        },
                        now,
                    )
            change = {"lesson": lesson_id, "version": published.version}
            # Pull-request templates the rules select get the lesson (`router.stages.diffuse`).
            outbox.enqueue(session, topic=diffuse.TOPIC, payload=change, key=diffuse.KEY, now=now)
            for ref in sorted(touched):
                outbox.enqueue(
                    session,
                    topic=EMBED_TOPIC,
                    payload={"ref": ref, "revision": change},
                    key=ref,
                    now=now,
                )
            return published

    def revise(self, lesson_id: str, actor: Principal) -> Lesson:
        """Open the next version as a draft; the published version stays in force."""
        return self._step(
            lesson_id,
            actor,
            "revision_started",
            lambda current: lifecycle.revise(current, actor.id),
        )

    def retire(self, lesson_id: str, actor: Principal) -> tuple[Lesson, int]:
        """Retire the lesson and withdraw its open placements; returns how many were withdrawn."""
        with self.db.transaction() as session:
            now = utcnow()
            current = self._load(session, lesson_id)
            check_author(actor, current.owner)
            retired = lifecycle.retire(current)
            lessons.save(session, retired, now)
            withdrawn = 0
            touched: set[str] = set()
            for placement in placements.for_lesson(session, lesson_id):
                adopted = (  # a template keeps a merged lesson until it is removed
                    placement.form == EmbeddingForm.GITHUB_PR_TEMPLATE
                    and placement.state == PlacementState.COMPLETED
                )
                if placement.state in OPEN or adopted:
                    placements.update(
                        session,
                        placement.model_copy(
                            update={"state": PlacementState.WITHDRAWN, "updated_at": now}
                        ),
                    )
                    withdrawn += 1
                    touched.add(placement.work_item_ref)
            for ref in sorted(touched):
                # The embed stage removes the items from their targets, serialised per target.
                outbox.enqueue(session, topic=EMBED_TOPIC, payload={"ref": ref}, key=ref, now=now)
            audit.record_by(
                session,
                actor,
                "lesson.retired",
                lesson_id,
                {"withdrawn_placements": withdrawn},
                now,
            )
            return retired, withdrawn
