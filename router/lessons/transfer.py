"""Export lessons, and import them all-or-nothing, idempotently, never over a newer version.

An entry is compared with what this database holds for its lesson (working copy, and the
published version of the same number):
- identical → unchanged;
- no such lesson → created (and published, when the entry is published);
- later than the working copy, by (version, lifecycle position draft < in_review < published <
  retired) → updated, unless the lesson is retired here or the same version differs in content;
- anything else is a conflict: this database has a newer or a different version.

Importing needs the `import` permission (admins). A published entry keeps the review record it
carries, and the audit entry names both that reviewer and the importing principal; a published
entry that was never reviewed comes in as a draft unless the importer trusts the file's reviews.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from core.access import Permission, Principal
from core.base import utcnow
from core.errors import ConflictError, ForbiddenError
from core.lesson import Lesson, LessonStatus, content_hash
from store import audit, lessons
from store.engine import Database

_POSITION = {s: n for n, s in enumerate(LessonStatus)}
_LIFECYCLE_FIELDS = {"status", "review", "superseded_by"}


@dataclass
class ImportReport:
    """What an import did (or, on a dry run, would do), by lesson id@version."""

    dry_run: bool
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    written: dict[str, Lesson] = field(default_factory=dict, repr=False)
    """What was (or would be) written per entry, after unreviewed versions became drafts."""

    @property
    def changed(self) -> bool:
        """Whether anything was (or would be) written."""
        return bool(self.created or self.updated)

    def summary(self) -> str:
        """One line for people."""
        if not self.changed:
            return f"nothing changed: all {len(self.unchanged)} entries are already here"
        verb = "would import" if self.dry_run else "imported"
        return (
            f"{verb}: {len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged"
        )


class ImportConflictError(ConflictError):
    """Entries that would overwrite newer or different versions; nothing was imported."""

    def __init__(self, conflicts: list[str]) -> None:
        super().__init__("nothing imported, conflicts:\n" + "\n".join(conflicts))
        self.conflicts = tuple(conflicts)


class _DryRunDone(Exception):
    """Rolls the dry run's transaction back once its report is complete."""


def export(db: Database, status: LessonStatus | None = None) -> list[Lesson]:
    """Each lesson's published versions, then its working copy where that differs."""
    entries: list[Lesson] = []
    with db.transaction() as session:
        for current in lessons.list_lessons(session, status=status):
            for number in lessons.versions(session, current.id):
                version = lessons.get_version(session, current.id, number)
                if version is not None and version != current:
                    entries.append(version)
            entries.append(current)
    return entries


def _content(lesson: Lesson) -> dict[str, object]:
    return lesson.model_dump(exclude=_LIFECYCLE_FIELDS)


def _key(lesson: Lesson) -> tuple[int, int]:
    return lesson.version, _POSITION[lesson.status]


def _apply(
    session: Session, entry: Lesson, now: datetime, report: ImportReport, trust_reviews: bool
) -> str | None:
    """Write one entry; returns a conflict instead of writing."""
    name = f"{entry.id}@{entry.version}"
    stored = lessons.get(session, entry.id)
    if stored is not None and (
        entry == stored
        or (
            entry.status == LessonStatus.PUBLISHED
            and entry == lessons.get_version(session, entry.id, entry.version)
        )
    ):
        report.unchanged.append(name)
        return None
    given = entry.status  # conflicts speak of the file's status, as the file says it
    if not trust_reviews:
        entry = _unreviewed_as_draft(entry)
    report.written[name] = entry
    if stored is None:
        lessons.add(session, entry, now)
        if entry.status == LessonStatus.PUBLISHED:
            lessons.publish(session, entry.id, now)
        report.created.append(name)
        return None
    if entry == stored:  # a published entry that was never reviewed, already here as a draft
        report.unchanged.append(name)
        return None
    here = f"this database has {stored.id}@{stored.version} ({stored.status.value})"
    if _key(entry) <= _key(stored):
        return f"{name} ({given.value}): {here}, newer than or different from the file's"
    if stored.status == LessonStatus.RETIRED:
        return f"{name}: {here}; a retired lesson stays retired"
    if entry.version == stored.version and _content(entry) != _content(stored):
        return f"{name}: {here} with different content; give the file's edit a new version"
    lessons.save(session, entry, now)
    if entry.status == LessonStatus.PUBLISHED and (
        lessons.get_version(session, entry.id, entry.version) is None
    ):
        lessons.publish(session, entry.id, now)
    report.updated.append(name)
    return None


def _unreviewed_as_draft(entry: Lesson) -> Lesson:
    """A published entry without a review record, as the draft it really is; an entry in
    review comes without the approval the file claims, to be approved here."""
    if entry.status == LessonStatus.PUBLISHED and entry.review is None:
        return entry.model_copy(update={"status": LessonStatus.DRAFT})
    if entry.status == LessonStatus.IN_REVIEW and entry.review is not None:
        return entry.model_copy(update={"review": None})
    return entry


def import_lessons(
    db: Database,
    entries: list[Lesson],
    actor: Principal,
    *,
    source: str,
    dry_run: bool = False,
    trust_reviews: bool = False,
) -> ImportReport:
    """Import every entry in one transaction, or none when any conflicts (ImportConflictError)."""
    if not actor.can(Permission.IMPORT):
        raise ForbiddenError(f"{actor.id} may not import lessons")
    report = ImportReport(dry_run=dry_run)
    try:
        with db.transaction() as session:
            now = utcnow()
            conflicts = []
            for entry in sorted(entries, key=lambda e: (e.id, *_key(e))):
                conflict = _apply(session, entry, now, report, trust_reviews)
                if conflict is not None:
                    conflicts.append(conflict)
            if conflicts:
                raise ImportConflictError(conflicts)
            if dry_run:
                raise _DryRunDone
            for name in (*report.created, *report.updated):
                lesson_id, _, version = name.rpartition("@")
                entry = report.written[name]
                details = {
                    "version": int(version),
                    "source": source,
                    "status": entry.status.value,
                    "reviewed_by": None if entry.review is None else entry.review.reviewer,
                    "trusted_reviews": trust_reviews,
                }
                if entry.status == LessonStatus.PUBLISHED:
                    details["content_hash"] = content_hash(entry.model_dump(mode="json"))
                audit.record_by(session, actor, "lesson.imported", lesson_id, details, now)
    except _DryRunDone:
        pass
    return report
