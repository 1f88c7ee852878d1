"""The review cadence: one issue per owner team in its own tracker, through the real `jira` and
PyGithub clients against the fakes, on both databases."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.github.cadence import GitHubIssues
from connectors.github.fake import FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.jira.cadence import PROPERTY, JiraIssues
from connectors.jira.fake import JiraFake
from connectors.retrying import RetryPolicy
from core.base import utcnow
from core.cadence import LABEL, Tracker
from core.lesson import Lesson, Mandate
from core.placement import EmbeddingForm, Placement, Signal, SignalKind
from core.team import TeamFileError, parse_teams
from router.access.operator import cli_principal
from router.access.teams import TeamService
from router.lessons.cadence import Action, CadenceSchedule, CadenceService, Outcome
from router.ruleset.active import ActiveRules
from router.settings import Settings
from store import audit, flags, lessons, placements, teams
from store.engine import Database
from tests.router.support import DRAFT

PUBLIC = "https://cairn.example.com"
REPO = "acme/platform"
PAST = date(2026, 1, 31)


def lesson(lesson_id: str, owner: str, review_by: date | None = None) -> Lesson:
    return Lesson.model_validate(
        {
            **DRAFT,
            "id": lesson_id,
            "version": 1,
            "title": f"Lesson {lesson_id}",
            "owner": owner,
            "review_by": None if review_by is None else review_by.isoformat(),
        },
        strict=False,
    )


def publish(db: Database, *found: Lesson) -> None:
    with db.transaction() as session:
        for item in found:
            lessons.add(session, item, utcnow())
            lessons.publish(session, item.id, utcnow())


def flag(db: Database, lesson_id: str) -> None:
    with db.transaction() as session:
        flags.raise_flag(session, "lesson", lesson_id, {"value": 0.125}, utcnow())


def dismiss(db: Database, lesson_id: str, n: int = 1) -> None:
    now = utcnow()
    with db.transaction() as session:
        placement = placements.add(
            session,
            Placement(
                id=f"pl-{lesson_id}-{n}",
                lesson_id=lesson_id,
                lesson_version=1,
                work_item_ref=f"github:acme/api#{n}",
                rule_id="pack/rule",
                rule_set_version="v1",
                form=EmbeddingForm.GITHUB_PR_CHECKLIST,
                mandate=Mandate.REQUIRED,
                created_at=now,
                updated_at=now,
            ),
        )
        placements.add_signal(
            session,
            Signal(
                id=f"sg-{lesson_id}-{n}",
                placement_id=placement.id,
                kind=SignalKind.DISMISSED,
                at=now,
                reason="not our stack",
            ),
        )


@pytest.fixture
def jira() -> Iterator[JiraFake]:
    fake = JiraFake()
    fake.projects.add("PLAT")
    with fake.running():
        yield fake


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as server:
        yield server


@pytest.fixture
def seeded(db: Database) -> Database:
    """`payments` (Jira PLAT) owns a lesson past review; `platform` (GitHub) a flagged one."""
    publish(
        db,
        lesson("pool-size", "payments", PAST),
        lesson("retry-budget", "platform"),
        lesson("cache-keys", "payments"),
    )
    flag(db, "retry-budget")
    with db.transaction() as session:
        teams.set_tracker(session, "payments", Tracker(jira="PLAT"), utcnow())
        teams.set_tracker(session, "platform", Tracker(github=REPO), utcnow())
    return db


def service(db: Database, jira: JiraFake, github: FakeGitHub) -> CadenceService:
    policy = RetryPolicy(attempts=2, base_wait=0.01, max_wait=1)
    target = GitHubTarget.with_token(
        "ghp_fake",
        base_url=github.url,
        policy=policy,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    trackers = {
        "jira": JiraIssues(jira.target(policy=policy).calls),
        "github": GitHubIssues(target.client, policy),
    }
    return CadenceService(db, trackers, PUBLIC)


def by_team(outcomes: list[Outcome]) -> dict[str, Outcome]:
    return {o.team: o for o in outcomes}


def writes(jira: JiraFake, github: FakeGitHub) -> tuple[int, int]:
    github_writes = [r for r in github.requests if r.startswith(("POST ", "PATCH "))]
    return sum(jira.writes.values()), len(github_writes)


def jira_text(node: Any) -> str:
    if isinstance(node, dict):
        own = node.get("text", "") + "".join(
            str(m.get("attrs", {}).get("href", "")) for m in node.get("marks", [])
        )
        return own + "".join(jira_text(c) for c in node.get("content", []))
    return ""


def test_one_issue_per_team_in_its_own_tracker_and_a_rerun_writes_nothing(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    cadence = service(seeded, jira, github)
    done = by_team(cadence.run(actor=cli_principal("tests")))
    assert (done["payments"].action, done["payments"].issue) == (Action.OPENED, "PLAT-1")
    assert (done["platform"].action, done["platform"].issue) == (Action.OPENED, f"{REPO}#1")
    assert set(done) == {"payments", "platform"}  # `cache-keys` needs nothing

    issue = jira.issues["PLAT-1"]
    assert issue["fields"]["labels"] == [LABEL]
    assert issue["properties"][PROPERTY]["team"] == "payments"
    text = jira_text(issue["fields"]["description"])
    assert "Lesson pool-size" in text and f"{PUBLIC}/ui/lessons/pool-size" in text
    assert "review was due by 2026-01-31" in text

    body = github.issues[(REPO, 1)]["body"]
    assert body.startswith("<!-- cairn:cadence:platform digest=")
    assert f"[Lesson retry-budget]({PUBLIC}/ui/lessons/retry-budget)" in body
    assert "flagged for revision (precision 12%)" in body
    assert [label["name"] for label in github.issues[(REPO, 1)]["labels"]] == [LABEL]

    before = writes(jira, github)
    again = by_team(cadence.run())
    assert {o.action for o in again.values()} == {Action.UNCHANGED}
    assert writes(jira, github) == before
    with seeded.transaction() as session:
        opened = audit.entries(session, action="cadence.opened")
    assert sorted(e.subject for e in opened) == ["team:payments", "team:platform"]
    assert {e.details["issue"] for e in opened} == {"PLAT-1", f"{REPO}#1"}


def test_a_change_updates_the_same_issue(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    cadence = service(seeded, jira, github)
    cadence.run()
    flag(seeded, "cache-keys")
    dismiss(seeded, "retry-budget")
    done = by_team(cadence.run())
    assert (done["payments"].action, done["payments"].issue) == (Action.UPDATED, "PLAT-1")
    assert (done["platform"].action, done["platform"].issue) == (Action.UPDATED, f"{REPO}#1")
    assert sorted(jira.issues) == ["PLAT-1"] and list(github.issues) == [(REPO, 1)]
    text = jira_text(jira.issues["PLAT-1"]["fields"]["description"])
    assert "Lesson cache-keys" in text and "Lesson pool-size" in text
    body = github.issues[(REPO, 1)]["body"]
    assert "flagged for revision (precision 12%); 1 unread feedback note(s)" in body
    with seeded.transaction() as session:
        updated = audit.entries(session, action="cadence.updated")
    assert sorted(e.subject for e in updated) == ["team:payments", "team:platform"]


def test_closing_without_acting_lists_the_items_again_in_a_new_issue(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    cadence = service(seeded, jira, github)
    cadence.run()
    jira.transition("PLAT-1", "Done")
    github.close_issue((REPO, 1))
    done = by_team(cadence.run())
    assert (done["payments"].action, done["payments"].issue) == (Action.OPENED, "PLAT-2")
    assert (done["platform"].action, done["platform"].issue) == (Action.OPENED, f"{REPO}#2")
    assert "Lesson pool-size" in jira_text(jira.issues["PLAT-2"]["fields"]["description"])
    assert "Lesson retry-budget" in github.issues[(REPO, 2)]["body"]
    assert github.issues[(REPO, 1)]["state"] == "closed"  # the closed one is left alone


def test_acting_on_every_item_empties_the_open_issue_once(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    cadence = service(seeded, jira, github)
    cadence.run()
    with seeded.transaction() as session:
        flags.clear(session, "lesson", "retry-budget", "dana", utcnow())
    done = by_team(cadence.run())
    assert done["platform"].action == Action.UPDATED
    assert "Nothing needs review now." in github.issues[(REPO, 1)]["body"]
    assert "platform" not in by_team(cadence.run())  # nothing listed, nothing to look at


def test_feedback_stays_listed_until_it_is_marked_read(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    dismiss(seeded, "cache-keys", 1)
    dismiss(seeded, "cache-keys", 2)
    cadence = service(seeded, jira, github)
    cadence.run()
    text = jira_text(jira.issues["PLAT-1"]["fields"]["description"])
    assert f"Lesson cache-keys{PUBLIC}/ui/lessons/cache-keys — 2 unread feedback note(s)" in text
    cadence.mark_read("cache-keys", cli_principal("tests"))
    assert by_team(cadence.run())["payments"].action == Action.UPDATED
    assert "cache-keys" not in jira_text(jira.issues["PLAT-1"]["fields"]["description"])


def test_two_runs_at_once_open_one_issue(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    first, second = service(seeded, jira, github), service(seeded, jira, github)
    during: list[list[Outcome]] = []
    # The second run starts while the first is between its claim and its Jira create.
    jira.after(r"^POST /issue$", lambda: during.append(second.run()))
    done = by_team(first.run())
    assert done["payments"].action == Action.OPENED
    assert by_team(during[0])["payments"].action == Action.BUSY
    assert sorted(jira.issues) == ["PLAT-1"]
    assert len(github.issues) == 1  # one of the two runs opened it, the other found it


def test_a_run_that_lost_its_record_finds_the_open_issue_instead_of_opening_another(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    cadence = service(seeded, jira, github)
    cadence.run()
    with seeded.engine.begin() as conn:  # as if the run died between the create and its record
        conn.exec_driver_sql("DELETE FROM cadence_issues")
    done = by_team(cadence.run())
    assert (done["payments"].action, done["payments"].issue) == (Action.UNCHANGED, "PLAT-1")
    assert (done["platform"].action, done["platform"].issue) == (Action.UNCHANGED, f"{REPO}#1")
    assert sorted(jira.issues) == ["PLAT-1"] and len(github.issues) == 1


def test_teams_without_a_tracker_or_its_credentials_are_reported_not_written(
    seeded: Database, jira: JiraFake
) -> None:
    publish(seeded, lesson("tls-rotation", "security", PAST))
    jira_only = CadenceService(seeded, {"jira": JiraIssues(jira.target().calls)}, PUBLIC)
    done = by_team(jira_only.run())
    assert done["security"].action == Action.NO_TRACKER and done["security"].items == 1
    assert done["platform"].action == Action.NOT_CONFIGURED
    assert done["platform"].detail == "no github credentials are configured"


def test_a_period_skips_teams_checked_within_it(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    cadence = service(seeded, jira, github)
    assert len(cadence.run(every=timedelta(weeks=1))) == 2
    flag(seeded, "cache-keys")
    assert cadence.run(every=timedelta(weeks=1)) == []  # checked less than a week ago
    later = utcnow() + timedelta(weeks=1, minutes=1)
    assert by_team(cadence.run(later, every=timedelta(weeks=1)))["payments"].action == (
        Action.UPDATED
    )


def test_the_team_map_sets_each_teams_tracker(db: Database) -> None:
    text = """teams:
  payments:
    tracker: {jira: PAY}
    members:
      - person: dana@example.com
  platform:
    tracker: {github: acme/platform}
    members: []
"""
    TeamService(db).import_file(text, "teams.yaml", cli_principal("tests"))
    with db.transaction() as session:
        assert teams.trackers(session) == {
            "payments": Tracker(jira="PAY"),
            "platform": Tracker(github="acme/platform"),
        }
        assert [e.subject for e in audit.entries(session, action="team.tracker")] == [
            "team:payments",
            "team:platform",
        ]
    TeamService(db).import_file(text, "teams.yaml", cli_principal("tests"))
    with db.transaction() as session:
        assert len(audit.entries(session, action="team.tracker")) == 2  # unchanged: not again


def test_runs_racing_in_threads_open_one_issue_per_team(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    runs = [service(seeded, jira, github) for _ in range(4)]
    start = threading.Barrier(len(runs))

    def run(cadence: CadenceService) -> list[Outcome]:
        start.wait()
        return cadence.run()

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        results = list(pool.map(run, runs))
    for team in ("payments", "platform"):
        actions = sorted(by_team(found)[team].action for found in results)
        assert actions.count(Action.OPENED) == 1
        assert set(actions) <= {Action.OPENED, Action.BUSY, Action.UNCHANGED}
    assert sorted(jira.issues) == ["PLAT-1"] and len(github.issues) == 1


def test_the_schedule_follows_cairn_cadence(
    seeded: Database, jira: JiraFake, github: FakeGitHub
) -> None:
    rules = ActiveRules(None)
    assert CadenceSchedule.configured(seeded, Settings(), {}, rules) is None  # off by default
    with pytest.raises(ValidationError, match="cadence"):
        Settings(cadence="hourly")
    schedule = CadenceSchedule.configured(seeded, Settings(cadence="weekly"), {}, rules)
    assert schedule is not None and schedule.every == timedelta(weeks=1)
    schedule.service = service(seeded, jira, github)
    schedule._step()  # what each hourly check runs
    assert sorted(jira.issues) == ["PLAT-1"] and len(github.issues) == 1
    before = writes(jira, github)
    schedule._step()
    assert writes(jira, github) == before


@pytest.mark.parametrize(
    ("team", "problem"),
    [
        (
            "    tracker: {jira: pay}\n    members: []",
            "teams.yaml:3: team 'x': tracker.jira: String",
        ),
        (
            "    tracker: {jira: PAY, github: a/b}\n    members: []",
            "teams.yaml:3: team 'x': tracker: a tracker is either `jira: PROJECT` or",
        ),
        ("    tracker: PAY\n    members: []", "teams.yaml:3: team 'x': `tracker` is `{jira: KEY}`"),
        ("    tracker: {jira: PAY}", "teams.yaml:3: team 'x': `members:` is needed"),
        ("    owner: dana\n    members: []", "teams.yaml:3: team 'x': unknown key 'owner'"),
    ],
)
def test_a_bad_tracker_is_refused_at_its_line(team: str, problem: str) -> None:
    with pytest.raises(TeamFileError) as refused:
        parse_teams(f"teams:\n  x:\n{team}\n", "teams.yaml")
    assert refused.value.errors[0].startswith(problem)
