"""Adoption over a seeded ledger, on SQLite and PostgreSQL: every figure worked out by hand."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.access import Principal, Role
from core.adoption import Tier, theatre_flags, tier_of
from core.errors import ForbiddenError
from core.lesson import Lesson, LessonStatus, Mandate
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from core.recurrence import MatchedOn, PlacementOutcome, Recurrence
from core.work import System, WorkItem
from router.cli import main
from router.compose import build_runtime
from router.http.app import create_app
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.feedback import FeedbackService
from router.reports.flags import FlagService, Thresholds
from router.settings import Settings
from store import audit, lessons, migrate, placements, recurrences, work_items
from store.engine import Database
from tests.router.support import DRAFT, bearer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday: ISO week 2026-W45
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PAY_PR = "github:acme/payments-api#7"
LEDGER_PR = "github:acme/ledger-api#3"
PAY_ISSUE = "jira:PAY-9"

# (placement id, lesson, work item, state, due in days, signals as (kind, hours after T0, reason))
SEED: list[
    tuple[str, str, str, PlacementState, int | None, list[tuple[SignalKind, float, str]]]
] = [
    # verified: ticked after 2 h, merged clean after 10 h
    (
        "p1",
        "pool",
        PAY_PR,
        PlacementState.COMPLETED,
        None,
        [(SignalKind.TICKED, 2, ""), (SignalKind.MERGED_CLEAN, 10, "")],
    ),
    # acknowledged only: ticked after 4 h, the PR still open
    ("p2", "retries", PAY_PR, PlacementState.COMPLETED, None, [(SignalKind.TICKED, 4, "")]),
    # dismissed with a reason
    (
        "p3",
        "pool",
        LEDGER_PR,
        PlacementState.DISMISSED,
        None,
        [(SignalKind.DISMISSED, 1, "no pool here")],
    ),
    # ignored: merged with the item open
    (
        "p4",
        "retries",
        LEDGER_PR,
        PlacementState.EMBEDDED,
        None,
        [(SignalKind.MERGED_UNCHECKED, 30, "")],
    ),
    # overdue: due after 3 days, nothing came back
    ("p5", "pool", PAY_ISSUE, PlacementState.EMBEDDED, 3, []),
    # delivered, due in the future
    ("p6", "retries", PAY_ISSUE, PlacementState.EMBEDDED, 60, []),
    # verified by a sub-task done after 6 h (Jira)
    (
        "p7",
        "retries",
        PAY_ISSUE,
        PlacementState.COMPLETED,
        None,
        [(SignalKind.SUBTASK_DONE, 6, "")],
    ),
    # withdrawn and never-delivered placements count toward no rate
    ("p8", "pool", PAY_ISSUE, PlacementState.WITHDRAWN, None, []),
    ("p9", "retries", LEDGER_PR, PlacementState.PLANNED, None, []),
]


def _work_item(ref: str, team: str) -> WorkItem:
    system = System.GITHUB if ref.startswith("github:") else System.JIRA
    project = ref.split(":", 1)[1].split("#")[0] if system == System.GITHUB else "PAY"
    kind = "pull_request" if system == System.GITHUB else "Story"
    return WorkItem(system=system, ref=ref, project=project, type=kind, team=team)


def seed(db: Database) -> None:
    with db.transaction() as session:
        for ref, team in ((PAY_PR, "payments"), (LEDGER_PR, "ledger"), (PAY_ISSUE, "payments")):
            work_items.record(session, _work_item(ref, team), T0)
        for n, (pid, lesson, ref, state, due, signals) in enumerate(SEED):
            created = T0 + timedelta(days=7 if pid == "p6" else 0)  # p6 in the next week
            placement = Placement(
                id=pid,
                lesson_id=lesson,
                lesson_version=2 if pid in ("p8", "p9") else 1,  # one effect per version
                work_item_ref=ref,
                rule_id="org/pool" if lesson == "pool" else "org/retries",
                rule_set_version="v1",
                form=EmbeddingForm.JIRA_SUBTASK
                if pid == "p7"
                else EmbeddingForm.GITHUB_PR_CHECKLIST,
                mandate=Mandate.REQUIRED,
                due_at=None if due is None else created + timedelta(days=due),
                state=state,
                reason="no pool here" if state == PlacementState.DISMISSED else None,
                created_at=created,
                updated_at=created,
            )
            placements.add(session, placement.model_copy(update={"id": pid}))
            for m, (kind, hours, reason) in enumerate(signals):
                placements.add_signal(
                    session,
                    Signal(
                        id=f"s{n}-{m}",
                        placement_id=pid,
                        kind=kind,
                        at=T0 + timedelta(hours=hours),
                        reason=reason or None,
                        delivery_id=f"d{n}-{m}",
                    ),
                )


def test_tiers_of_the_seeded_ledger(db: Database) -> None:
    seed(db)
    found = ReportService(db).assessed(Filters(), NOW)
    assert {a.entry.placement.id: a.adoption.tier for a in found} == {
        "p1": Tier.VERIFIED,
        "p2": Tier.ACKNOWLEDGED,
        "p3": Tier.DISMISSED,
        "p4": Tier.IGNORED,
        "p5": Tier.OVERDUE,
        "p6": Tier.DELIVERED,
        "p7": Tier.VERIFIED,
        "p8": Tier.WITHDRAWN,
        "p9": Tier.UNDELIVERED,
    }


def test_adoption_by_team_worked_out_by_hand(db: Database) -> None:
    seed(db)
    rows, total = ReportService(db).adoption(GroupBy.TEAM, Filters(), NOW)
    by_group = {row.group: row.as_dict() for row in rows}
    # payments: p1 verified, p2 acknowledged, p5 overdue, p6 delivered, p7 verified, p8 withdrawn
    payments: dict[str, Any] = by_group["payments"]
    assert payments["reach"] == 5
    assert payments["counts"] == {
        "undelivered": 0,
        "delivered": 1,
        "acknowledged": 1,
        "verified": 2,
        "dismissed": 0,
        "ignored": 0,
        "overdue": 1,
        "withdrawn": 1,
    }
    assert payments["rates"]["verified"] == 0.4
    # Acknowledged after 2 h (p1), 4 h (p2), 6 h (p7); verified after 10 h (p1) and 6 h (p7).
    assert payments["median_hours_to_acknowledge"] == 4.0
    assert payments["median_hours_to_verify"] == 8.0
    assert payments["weeks"] == {
        "2026-W45": {"placed": 5, "acknowledged": 3, "verified": 2},
        "2026-W46": {"placed": 1},
    }
    # ledger: p3 dismissed, p4 ignored, p9 never delivered (not reach)
    ledger = by_group["ledger"]
    assert (ledger["reach"], ledger["dismissals"]) == (2, {"no pool here": 1})
    assert ledger["rates"] == {
        "delivered": 0.0,
        "acknowledged": 0.0,
        "verified": 0.0,
        "dismissed": 0.5,
        "ignored": 0.5,
        "overdue": 0.0,
    }
    assert ledger["median_hours_to_acknowledge"] is None
    assert total.as_dict()["reach"] == 7 and total.tiers["verified"] == 2


def test_filters_and_grouping_by_lesson_rule_and_repository(db: Database) -> None:
    seed(db)
    service = ReportService(db)
    rows, _ = service.adoption(GroupBy.LESSON, Filters(teams=["payments"]), NOW)
    assert [(r.group, r.reach) for r in rows] == [("pool", 2), ("retries", 3)]
    rows, _ = service.adoption(GroupBy.REPOSITORY, Filters(), NOW)
    assert [(r.group, r.reach) for r in rows] == [
        ("PAY", 3),
        ("acme/ledger-api", 2),
        ("acme/payments-api", 2),
    ]
    rows, _ = service.adoption(GroupBy.RULE, Filters(), NOW)
    assert [r.group for r in rows] == ["org/pool", "org/retries"]
    # The period covers the first week only (p6 was placed in the second).
    first_week = Filters(since=T0, until=T0 + timedelta(days=7))
    assert len(service.assessed(first_week, NOW)) == 8
    ignored = service.assessed(Filters(tiers=[Tier.IGNORED, Tier.OVERDUE]), NOW)
    assert sorted(a.entry.placement.id for a in ignored) == ["p4", "p5"]


def test_ledger_and_report_over_http_and_cli(sqlite_url: str) -> None:
    db = Database(sqlite_url)

    migrate.upgrade(db)
    seed(db)
    reader = bearer(db, "reader", "reader")
    settings = Settings(database_url=SecretStr(sqlite_url), poll_interval=0.05)
    with TestClient(create_app(build_runtime(settings)), headers=reader) as client:
        page = client.get(
            "/api/v1/placements", params={"team": "payments", "limit": 2, "offset": 1}
        ).json()
        assert (page["total"], page["next_offset"], len(page["items"])) == (6, 3, 2)
        assert [i["id"] for i in page["items"]] == ["p2", "p5"]
        one = client.get("/api/v1/placements/p1").json()
        assert (one["tier"], [s["kind"] for s in one["signals"]]) == (
            "verified",
            ["ticked", "merged_clean"],
        )
        assert client.get("/api/v1/placements/p1/signals").json()[1]["delivery_id"] == "d0-1"
        assert client.get("/api/v1/placements/nope").status_code == 404
        report = client.get(
            "/api/v1/reports/adoption", params={"by": "team", "from": "2026-11-01"}
        ).json()
        assert [r["group"] for r in report["rows"]] == ["ledger", "payments"]
        backwards = client.get(
            "/api/v1/reports/adoption", params={"from": "2026-11-05", "to": "2026-11-01"}
        )
        assert backwards.status_code == 422 and "before it starts" in backwards.json()["reason"]
    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": sqlite_url}
    table = runner.invoke(main, ["report", "adoption", "--by", "team"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:4] == ["group", "reach", "delivered", "acknowledged"]
    assert lines[2].split()[:6] == ["payments", "5", "1", "1", "2", "0"]
    csv = runner.invoke(main, ["report", "adoption", "--format", "csv"], env=env).output
    assert csv.splitlines()[0].startswith("group,reach,delivered,")
    listed = runner.invoke(
        main, ["placements", "list", "--tier", "verified", "--format", "json"], env=env
    )
    assert [p["id"] for p in json.loads(listed.output)] == ["p1", "p7"]
    db.dispose()


@pytest.mark.parametrize(
    ("state", "kinds", "due_in", "tier"),
    [
        (PlacementState.EMBEDDED, [], None, Tier.DELIVERED),
        (PlacementState.EMBEDDED, [], -1, Tier.OVERDUE),
        (PlacementState.OVERDUE, [], None, Tier.OVERDUE),
        (PlacementState.COMPLETED, [SignalKind.TICKED], None, Tier.ACKNOWLEDGED),
        (
            PlacementState.COMPLETED,
            [SignalKind.TICKED, SignalKind.RESOLVED_CLEAN],
            None,
            Tier.VERIFIED,
        ),
        (PlacementState.COMPLETED, [SignalKind.TRAINING_COMPLETED], None, Tier.VERIFIED),
        (PlacementState.EMBEDDED, [SignalKind.RESOLVED_UNCHECKED], -1, Tier.IGNORED),
        # Ticked then unticked after the merge: the item ended open.
        (
            PlacementState.EMBEDDED,
            [SignalKind.MERGED_CLEAN, SignalKind.UNTICKED],
            None,
            Tier.DELIVERED,
        ),
        (PlacementState.FAILED, [], None, Tier.UNDELIVERED),
    ],
)
def test_tier_table(
    state: PlacementState, kinds: list[SignalKind], due_in: int | None, tier: Tier
) -> None:
    placement = Placement(
        id="p",
        lesson_id="l",
        lesson_version=1,
        work_item_ref=PAY_PR,
        rule_id="r",
        rule_set_version="v",
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        mandate=Mandate.REQUIRED,
        due_at=None if due_in is None else NOW + timedelta(days=due_in),
        state=state,
        created_at=T0,
        updated_at=T0,
    )
    signals = [
        Signal(id=f"s{n}", placement_id="p", kind=kind, at=T0 + timedelta(hours=n))
        for n, kind in enumerate(kinds)
    ]
    assert tier_of(placement, signals, NOW) == tier


def _tick(
    pid: str, seconds: float, delivery: str | None = None, kind: SignalKind = SignalKind.TICKED
) -> Signal:
    return Signal(
        id=f"{pid}-{kind}-{seconds}",
        placement_id=pid,
        kind=kind,
        at=T0 + timedelta(seconds=seconds),
        delivery_id=delivery,
    )


def _placed(pid: str, ref: str = PAY_PR) -> Placement:
    return Placement(
        id=pid,
        lesson_id=pid,
        lesson_version=1,
        work_item_ref=ref,
        rule_id="r",
        rule_set_version="v",
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        mandate=Mandate.REQUIRED,
        state=PlacementState.COMPLETED,
        created_at=T0,
        updated_at=T0,
    )


def test_checkbox_theatre_is_flagged_not_dropped() -> None:
    flags = theatre_flags(
        [
            (_placed("quick"), [_tick("quick", 10)]),  # ticked 10 s after placement
            # Three items of one PR ticked in one edit, an hour in.
            (_placed("a", LEDGER_PR), [_tick("a", 3600, "edit-1")]),
            (_placed("b", LEDGER_PR), [_tick("b", 3600, "edit-1")]),
            (_placed("c", LEDGER_PR), [_tick("c", 3600, "edit-1")]),
            # Three ticks of another work item within 5 s, in separate edits.
            (_placed("x", PAY_ISSUE), [_tick("x", 7200, "e1")]),
            (_placed("y", PAY_ISSUE), [_tick("y", 7202, "e2")]),
            (_placed("z", PAY_ISSUE), [_tick("z", 7204, "e3")]),
            (
                _placed("late"),
                [
                    _tick("late", 600),
                    _tick("late", 900, kind=SignalKind.MERGED_CLEAN),
                    _tick("late", 950, kind=SignalKind.UNTICKED),
                ],
            ),
            (_placed("honest"), [_tick("honest", 5400)]),
        ]
    )
    assert flags == {
        "quick": {"quick_tick"},
        "a": {"bulk_tick"},
        "b": {"bulk_tick"},
        "c": {"bulk_tick"},
        "x": {"bulk_tick"},
        "y": {"bulk_tick"},
        "z": {"bulk_tick"},
        "late": {"unticked_after_merge"},
    }


def test_the_lessons_of_a_grouped_item_are_one_box_in_a_sweep() -> None:
    def grouped(pid: str) -> Placement:
        return _placed(pid, LEDGER_PR).model_copy(update={"grouped": True})

    def own(pid: str) -> tuple[Placement, list[Signal]]:
        return _placed(pid, LEDGER_PR), [_tick(pid, 3600, "edit-1")]

    # One edit ticks the grouped item (three lessons) and one item of its own: two boxes.
    one_box = [(grouped(p), [_tick(p, 3600, "edit-1")]) for p in ("g1", "g2", "g3")]
    assert theatre_flags([*one_box, own("own")]) == {}
    # A third box in the same edit makes it a sweep, grouped lessons included.
    swept = theatre_flags([*one_box, own("own"), own("other")])
    assert swept == {p: {"bulk_tick"} for p in ("g1", "g2", "g3", "own", "other")}


def test_theatre_share_and_feedback_to_owners(db: Database) -> None:
    seed(db)
    publish_owned = [("pool", "platform"), ("retries", "payments")]
    with db.transaction() as session:
        for lesson_id, owner in publish_owned:
            lesson = Lesson.model_validate(
                {**DRAFT, "id": lesson_id, "owner": owner, "version": 1}, strict=False
            )
            lessons.add(session, lesson.model_copy(update={"status": LessonStatus.DRAFT}), T0)
    _, total = ReportService(db).adoption(GroupBy.TEAM, Filters(), NOW)
    # No tick in the seed came within 30 s or in a sweep: the share is measured, and nothing.
    assert total.as_dict()["theatre"] == {"share": 0.0}
    feedback = FeedbackService(db).dismissals("platform", Filters(), NOW)
    assert [(f["lesson"], f["dismissed"]) for f in feedback] == [("pool", 1)]
    assert feedback[0]["reasons"][0]["reason"] == "no pool here"
    assert feedback[0]["reasons"][0]["where"][0]["work_item"] == LEDGER_PR
    assert FeedbackService(db).dismissals("payments", Filters(), NOW) == []


def _recurrence(incident: str, lesson: str, started: datetime, *pids: str) -> Recurrence:
    outcomes = tuple(
        PlacementOutcome(
            placement_id=pid,
            work_item_ref=PAY_ISSUE if pid == "p5" else PAY_PR,
            lesson_version=1,
            state=PlacementState.EMBEDDED,
            related_by=("team:payments",),
            placed_at=T0,
        )
        for pid in pids
    )
    return Recurrence(
        incident_ref=incident,
        lesson_id=lesson,
        lesson_version=1,
        matched_on=MatchedOn(services=("payments-api",)),
        placements=outcomes,
        incident_started_at=started,
        detected_at=started + timedelta(minutes=5),
    )


def test_recurrences_replay_each_placement_to_the_incident_start(db: Database) -> None:
    seed(db)
    with db.transaction() as session:
        # p1 was ticked 2 h in: an incident 1 h in found it placed but not yet acted on; one
        # 5 h in found it acknowledged. p5 was never acted on. "retries" recurred unplaced.
        recurrences.add(session, _recurrence("pd:1", "pool", T0 + timedelta(hours=1), "p1"))
        recurrences.add(session, _recurrence("pd:2", "pool", T0 + timedelta(hours=5), "p1", "p5"))
        recurrences.add(session, _recurrence("pd:3", "retries", T0 - timedelta(days=1)))
    found = ReportService(db).report(GroupBy.LESSON, Filters())
    counts, flagged = found.recurrence, found.placed_but_not_honoured
    assert counts["pool"] == {"recurrences": 2, "placed_before": 2, "placed_not_honoured": 2}
    assert counts["retries"] == {"recurrences": 1, "placed_before": 0, "placed_not_honoured": 0}
    assert counts["(all)"]["recurrences"] == 3
    assert [(f["incident"], f["placements"], f["placed_not_honoured"]) for f in flagged] == [
        ("pd:1", {"p1": "delivered"}, ["p1"]),
        ("pd:2", {"p1": "acknowledged", "p5": "delivered"}, ["p5"]),
    ]
    by_team = ReportService(db).report(GroupBy.TEAM, Filters()).recurrence
    assert by_team["payments"]["placed_not_honoured"] == 2


def test_rules_and_lessons_are_flagged_for_revision_and_cleared(db: Database) -> None:
    seed(db)
    operator = Principal("cli:ops", frozenset({Role.ADMIN}))
    # Precision over the seed: org/pool and the lesson pool 1 verified of 2 decided (p3
    # dismissed); org/retries and retries 1 verified (p7) of 2 (p4 ignored): 0.5 each.
    strict = FlagService(db, Thresholds(threshold=0.6, min_outcomes=2))
    raised = strict.evaluate(operator)
    assert sorted((f["kind"], f["subject"], f["value"]) for f in raised) == [
        ("lesson", "pool", 0.5),
        ("lesson", "retries", 0.5),
        ("rule", "org/pool", 0.5),
        ("rule", "org/retries", 0.5),
    ]
    assert strict.evaluate(operator) == []  # still open: not raised twice
    assert FlagService(db, Thresholds(threshold=0.6, min_outcomes=3)).evaluate(operator) == []
    strict.clear(operator, "rule", "org/pool")
    assert {(f.subject, f.open) for f in strict.listed() if f.kind == "rule"} == {
        ("org/pool", False),
        ("org/retries", True),
    }
    again = strict.evaluate(operator)  # nothing improved: raised again
    assert [(f["kind"], f["subject"]) for f in again] == [("rule", "org/pool")]
    with db.transaction() as session:
        actions = [e.action for e in audit.entries(session) if e.action.startswith("flag.")]
    assert actions.count("flag.raised") == 5 and actions.count("flag.cleared") == 1
    reader = Principal("token:r", frozenset({Role.READER}))
    with pytest.raises(ForbiddenError):
        strict.evaluate(reader)
