"""Completions reported as xAPI statements, polled from a learning record store or pushed to
`POST /hooks/xapi`: each one is matched to the learner (by email, or by their xAPI account in the
team map) and to the lesson whose training names the statement's activity IRI, and recorded on
that learner's placement as a signal. A statement read twice is recorded once (its id is the
delivery id), and statements about people or activities Cairn does not know are counted, not
errors.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from connectors.lms import Completion
from connectors.xapi.client import Cursor, XapiClient, poll
from connectors.xapi.statements import Statement, outcome
from core.base import utcnow
from core.errors import ConfigurationError
from core.feedback import ItemMark
from router.lms.learners import learner_ref
from router.lms.progress import MARKS, mark_lessons
from router.settings import Settings
from store import audit, cursors, lessons, teams
from store.engine import Database

log = logging.getLogger("cairn.training")
ACTOR = "cairn:training"

XAPI = "xapi"


@dataclass(frozen=True, slots=True)
class Reported:
    """What Cairn needs of one statement."""

    id: str
    activity: str
    completion: Completion
    at: datetime
    email: str | None = None
    account: str | None = None


@dataclass
class Outcome:
    """What one batch of statements did."""

    recorded: int = 0
    unknown_learner: int = 0
    unknown_activity: int = 0
    not_placed: int = 0


def _lessons_by_activity(session: Session) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for lesson in lessons.published(session):
        iri = lesson.training.modules.get(XAPI) if lesson.training is not None else None
        if iri:
            found.setdefault(iri, []).append(lesson.id)
    return found


def _learners(session: Session, report: Reported) -> list[tuple[str, str]]:
    """(team, person) of every member the statement's actor is."""
    matches = []
    if report.email:
        matches = teams.find(session, email=report.email.lower())
    if not matches and report.account:
        matches = teams.find(session, lms=(XAPI, report.account))
    return [(team, member.person) for team, member in matches]


def ingest(session: Session, reports: Iterable[Reported], now: datetime) -> Outcome:
    """Record each statement on the placements it is about, in the caller's transaction."""
    outcome = Outcome()
    by_activity = _lessons_by_activity(session)
    for report in reports:
        mark = MARKS.get(report.completion)
        if mark is None:
            continue
        lesson_ids = by_activity.get(report.activity, [])
        if not lesson_ids:
            outcome.unknown_activity += 1
            continue
        who = _learners(session, report)
        if not who:
            outcome.unknown_learner += 1
            continue
        recorded = _record(session, report, mark, who, lesson_ids, now)
        outcome.recorded += recorded
        if not recorded:
            outcome.not_placed += 1
    return outcome


def _record(
    session: Session,
    report: Reported,
    mark: ItemMark,
    who: Sequence[tuple[str, str]],
    lesson_ids: Sequence[str],
    now: datetime,
) -> int:
    recorded = 0
    for team, person in who:
        _matched, signals = mark_lessons(
            session,
            learner_ref(team, person),
            lesson_ids,
            mark,
            at=report.at,
            actor=f"xapi:{report.email or report.account}",
            delivery=f"xapi:{report.id}",
            now=now,
        )
        recorded += signals
    return recorded


def reported(statement: Statement, received: datetime | None = None) -> Reported | None:
    """What Cairn needs of a statement, or None when it reports no completion Cairn tracks
    (a pushed statement without a time is taken as of when it was `received`)."""
    completion = outcome(statement)
    activity = statement.activity
    when = statement.timestamp or statement.stored or received
    if completion is None or activity is None or when is None:
        return None
    actor = statement.actor
    account = actor.account.name if actor is not None and actor.account is not None else None
    return Reported(
        id=statement.id,
        activity=activity,
        completion=completion,
        at=when,
        email=None if actor is None else actor.email,
        account=account,
    )


CURSOR = "xapi:statements"
MAX_PER_ROUND = 5_000


def _log_progress(count: int) -> None:
    """A long first read says how far it got, page by page (after its first page)."""
    if count > PROGRESS_AFTER:
        log.info("xAPI: %d statements read so far", count)


PROGRESS_AFTER = 100


class StatementPoller:
    """Reads new statements from the LRS and records them, with the cursor, in one transaction
    per page of work: a crash repeats at most what was not yet committed, never loses any."""

    def __init__(
        self,
        db: Database,
        client: XapiClient,
        max_per_round: int = MAX_PER_ROUND,
        progress: Callable[[int], None] | None = None,
    ):
        self.db = db
        self.client = client
        self.max_per_round = max_per_round
        self.progress = progress or _log_progress

    def __repr__(self) -> str:
        return f"StatementPoller({self.client!r})"

    @classmethod
    def configured(
        cls, db: Database, settings: Settings, progress: Callable[[int], None] | None = None
    ) -> "StatementPoller":
        """The poller of the LRS the settings name."""
        if not settings.xapi_url or not settings.xapi_username or settings.xapi_password is None:
            raise ConfigurationError(
                "CAIRN_XAPI_URL needs CAIRN_XAPI_USERNAME and CAIRN_XAPI_PASSWORD"
            )
        client = XapiClient(settings.xapi_url, settings.xapi_username, settings.xapi_password)
        return cls(db, client, progress=progress)

    def poll_once(self) -> int:
        """Read up to `max_per_round` new statements; returns the signals they recorded."""
        with self.db.transaction() as session:
            saved = cursors.get(session, CURSOR)
        cursor = None if saved is None else Cursor.model_validate(saved)
        found, moved = poll(self.client, cursor, self.max_per_round, progress=self.progress)
        if not found:
            return 0
        now = utcnow()
        with self.db.transaction() as session:
            result = ingest(session, filter(None, map(reported, found)), now)
            cursors.put(session, CURSOR, moved.model_dump(mode="json"), now)
            audit.record(
                session,
                actor=ACTOR,
                action="training.statements",
                subject="xapi",
                details={"read": len(found), **asdict(result)},
                now=now,
            )
        if result.unknown_learner or result.unknown_activity:
            log.info("xAPI: %s", result)
        return result.recorded
