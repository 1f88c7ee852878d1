"""The review cadence as work: what each owner team's lessons need, as one issue per team in
the team's own tracker (Jira or GitHub, the team map's `tracker`), opened or kept up to date.

Listed: published lessons past their review-by date, lessons (and team rules) flagged for
revision, and lessons with unread feedback (dismissals since the owners last marked it read,
`cairn cadence read`). A run reads each team's issue once and writes only when what it lists
changed; an issue the team closed while items remain is followed by a new one listing them.
Each team's cadence is claimed in the database first (the team is the key of its row), so
concurrent runs, in several processes or at a restart, never open two issues for one team.
"""

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connectors.github.cadence import GitHubIssues
from connectors.github.target import GitHubTarget
from connectors.jira.cadence import JiraIssues
from connectors.jira.target import JiraTarget
from connectors.target import Target
from core.access import Principal
from core.base import utcnow
from core.cadence import Issue, IssueTracker, Reason, Report, Tracker, merge
from core.errors import CairnError, NotFoundError
from core.lesson import Lesson, LessonStatus
from core.work import System
from router.periodic import Periodic
from router.ruleset.active import ActiveRules
from router.settings import Settings
from router.stages.embed import lesson_link
from rules.loader import RuleSet
from rules.model import Level
from store import audit, flags, lessons, teams
from store import cadence as cadence_store
from store.engine import Database

log = logging.getLogger("cairn.cadence")
ACTOR = "cairn:cadence"
LEASE = timedelta(minutes=10)
"""How long a run holds a team's cadence; a run that dies lets go when it lapses."""
PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
CHECK_SECONDS = 3600.0
"""How often the schedule looks for teams whose period has passed."""


class Action(StrEnum):
    """What a run did for one team."""

    OPENED = "opened"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    NOTHING = "nothing"
    """Nothing to list and no open issue: nothing written."""
    BUSY = "busy"
    """Another run holds the team's cadence."""
    NO_TRACKER = "no_tracker"
    """The team map gives the team no tracker."""
    NOT_CONFIGURED = "not_configured"
    """The team's tracker is a system Cairn has no credentials for."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One team's result."""

    team: str
    action: Action
    items: int = 0
    issue: str | None = None
    url: str | None = None
    detail: str | None = None


def trackers_from(targets: Mapping[System, Target]) -> dict[str, IssueTracker]:
    """The issue trackers the configured targets give (their clients, credentials, pacing)."""
    found: dict[str, IssueTracker] = {}
    github = targets.get(System.GITHUB)
    if isinstance(github, GitHubTarget):
        found["github"] = GitHubIssues(github.client, github.policy)
    jira = targets.get(System.JIRA)
    if isinstance(jira, JiraTarget):
        found["jira"] = JiraIssues(jira.calls)
    return found


def _lesson_rows(
    lesson: Lesson, public_url: str, reason: Reason, detail: str
) -> tuple[str, str, str, str, str, Reason, str]:
    link = lesson_link(public_url, lesson.id)
    return (lesson.owner, "lesson", lesson.id, lesson.title, link, reason, detail)


def _precision(measured: Mapping[str, object]) -> str:
    value = measured.get("value")
    return f"precision {value:.0%}" if isinstance(value, float) else "low precision"


def reports(
    session: Session, today: date, public_url: str, rule_set: RuleSet | None = None
) -> dict[str, Report]:
    """Owner team → what it is asked to review today (teams with nothing are left out)."""
    rows = [
        _lesson_rows(lesson, public_url, Reason.REVIEW_DUE, lesson.review_by.isoformat())
        for lesson in lessons.due_for_review(session, today)
        if lesson.review_by is not None
    ]
    live: dict[str, Lesson | None] = {}

    def lesson(lesson_id: str) -> Lesson | None:
        if lesson_id not in live:
            found = lessons.get(session, lesson_id)
            live[lesson_id] = (
                None if found is None or found.status == LessonStatus.RETIRED else found
            )
        return live[lesson_id]

    rule_owners = {
        f"{pack.pack}/{rule.id}": pack.team
        for pack in (rule_set.packs if rule_set else ())
        if pack.level == Level.TEAM and pack.team
        for rule in pack.rules
    }
    for flag in flags.listed(session, open_only=True):
        if flag.kind == "lesson" and (found := lesson(flag.subject)) is not None:
            rows.append(_lesson_rows(found, public_url, Reason.FLAGGED, _precision(flag.measured)))
        elif flag.kind == "rule" and (owner := rule_owners.get(flag.subject)) is not None:
            link = f"{public_url.rstrip('/')}/ui/rules"
            detail = _precision(flag.measured)
            rows.append((owner, "rule", flag.subject, flag.subject, link, Reason.FLAGGED, detail))
    for lesson_id, count in sorted(cadence_store.unread_feedback(session).items()):
        if (found := lesson(lesson_id)) is not None:
            rows.append(_lesson_rows(found, public_url, Reason.FEEDBACK, str(count)))
    by_team: dict[str, list[tuple[str, str, str, str, Reason, str]]] = {}
    for owner, *rest in rows:
        by_team.setdefault(owner, []).append(tuple(rest))  # type: ignore[arg-type]
    return {team: Report(team, merge(found)) for team, found in sorted(by_team.items())}


def _sync(
    client: IssueTracker, tracker: Tracker, record: cadence_store.Record, report: Report
) -> tuple[Action, Issue | None]:
    """Bring the team's issue in line with the report: at most one read of the recorded
    issue, one search when it is gone or closed, and one write."""
    where = tracker.where
    separator = "-" if tracker.system == "jira" else "#"
    issue = None
    if (
        record.issue_ref is not None
        and record.system == tracker.system
        and record.issue_ref.startswith(where + separator)  # a team that moved: start afresh
    ):
        issue = client.read(record.issue_ref)
    if issue is None or not issue.open:
        # An issue a run opened and could not record (it crashed), or one reopened by hand.
        issue = client.find(where, report) or issue
    if issue is not None and issue.open:
        if (issue.digest or record.digest) == report.digest:
            return Action.UNCHANGED, issue
        return Action.UPDATED, client.update(issue.ref, report)
    if not report.items:
        return Action.NOTHING, issue
    return Action.OPENED, client.create(where, report)


class CadenceService:
    """Runs the review cadence over every owner team."""

    def __init__(
        self,
        db: Database,
        trackers: Mapping[str, IssueTracker],
        public_url: str,
        *,
        rules: Callable[[], RuleSet | None] = lambda: None,
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.trackers = dict(trackers)
        self.public_url = public_url
        self.rules = rules
        self.lease = lease

    def run(
        self,
        now: datetime | None = None,
        *,
        every: timedelta | None = None,
        actor: Principal | None = None,
    ) -> list[Outcome]:
        """One pass over the owner teams (with `every`: only those not checked within it);
        `actor` is who ran it (the schedule when None)."""
        now = now or utcnow()
        with self.db.transaction() as session:
            found = reports(session, now.date(), self.public_url, self.rules())
            places = teams.trackers(session)
            recorded = cadence_store.records(session)
        pending = set(found) | {
            team
            for team, record in recorded.items()
            if record.issue_ref is not None and record.digest != Report(team, ()).digest
        }
        outcomes = []
        for team in sorted(pending):
            checked = recorded[team].checked_at if team in recorded else None
            if every is not None and checked is not None and checked > now - every:
                continue
            report = found.get(team, Report(team, ()))
            outcomes.append(self._team(report, places.get(team), now, actor))
        return outcomes

    def _team(
        self, report: Report, tracker: Tracker | None, now: datetime, actor: Principal | None
    ) -> Outcome:
        team, count = report.team, len(report.items)
        if tracker is None:
            return Outcome(team, Action.NO_TRACKER, count)
        client = self.trackers.get(tracker.system)
        if client is None:
            detail = f"no {tracker.system} credentials are configured"
            return Outcome(team, Action.NOT_CONFIGURED, count, detail=detail)
        token = secrets.token_hex(16)
        try:
            with self.db.transaction() as session:
                record = cadence_store.claim(session, team, token, now, self.lease)
        except IntegrityError:
            record = None  # another run inserted the team's row first
        if record is None:
            return Outcome(team, Action.BUSY, count)
        try:
            action, issue = _sync(client, tracker, record, report)
        except CairnError as exc:
            with self.db.transaction() as session:
                cadence_store.release(session, team, token)
            log.warning("review cadence of %s failed: %s", team, exc)
            return Outcome(team, Action.FAILED, count, detail=str(exc))
        except Exception:
            with self.db.transaction() as session:
                cadence_store.release(session, team, token)
            raise
        with self.db.transaction() as session:
            at = utcnow()
            settled = cadence_store.settle(
                session,
                team,
                token,
                at,
                system=tracker.system if issue is not None else record.system,
                issue_ref=issue.ref if issue is not None else record.issue_ref,
                url=issue.url if issue is not None else record.url,
                digest=report.digest,  # what the open issue lists, or that nothing is due
            )
            if settled and action in (Action.OPENED, Action.UPDATED) and issue is not None:
                details = {
                    "issue": issue.ref,
                    "url": issue.url,
                    "system": tracker.system,
                    "items": [f"{i.kind}:{i.subject}" for i in report.items],
                    "digest": report.digest,
                }
                subject, what = f"team:{team}", f"cadence.{action.value}"
                if actor is None:
                    audit.record(
                        session, actor=ACTOR, action=what, subject=subject, details=details, now=at
                    )
                else:
                    audit.record_by(session, actor, what, subject, details, at)
        if not settled:
            log.warning("review cadence of %s: the claim lapsed; another run records it", team)
        return Outcome(
            team,
            action,
            count,
            issue=None if issue is None else issue.ref,
            url=None if issue is None else issue.url,
        )

    def mark_read(self, lesson_id: str, actor: Principal) -> None:
        """Mark a lesson's feedback read (audited): it leaves the cadence until new feedback."""
        with self.db.transaction() as session:
            if lessons.get(session, lesson_id) is None:
                raise NotFoundError(f"lesson {lesson_id!r} does not exist")
            now = utcnow()
            cadence_store.mark_read(session, lesson_id, actor.id, now)
            audit.record_by(session, actor, "feedback.read", lesson_id, {}, now)


class CadenceSchedule:
    """`CAIRN_CADENCE=daily|weekly`: checks every hour for teams whose period has passed
    (the last check is kept in the database, so a restart does not run it again early)."""

    def __init__(self, service: CadenceService, every: timedelta) -> None:
        self.service = service
        self.every = every
        self._loop = Periodic("review-cadence", CHECK_SECONDS, self._step)

    @classmethod
    def configured(
        cls,
        db: Database,
        settings: Settings,
        targets: Mapping[System, Target],
        rules: ActiveRules,
    ) -> "CadenceSchedule | None":
        """The schedule the settings ask for, or None (`off`, the default)."""
        every = PERIODS.get(settings.cadence)
        if every is None:
            return None
        service = CadenceService(
            db, trackers_from(targets), settings.public_url, rules=lambda: rules.rule_set
        )
        return cls(service, every)

    async def start(self) -> None:
        """Start the schedule (the first check runs at once)."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop it."""
        await self._loop.stop()

    def _step(self) -> None:
        for outcome in self.service.run(every=self.every):
            if outcome.action in (Action.OPENED, Action.UPDATED):
                log.info("review cadence of %s: %s %s", outcome.team, outcome.action, outcome.issue)
            elif outcome.action in (Action.FAILED, Action.NOT_CONFIGURED):
                log.warning("review cadence of %s: %s", outcome.team, outcome.detail)
