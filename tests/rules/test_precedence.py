"""Table tests for precedence, suppression, mandates, de-duplication and the fatigue budget."""

from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from core.lesson import Lesson, Mandate
from core.placement import EmbeddingForm
from rules.decision import MANDATE_ORDER, stricter
from rules.loader import build_rule_set
from rules.model import Audience
from rules.select import grouped
from tests.rules.builders import (
    applicability,
    item,
    lesson,
    pack,
    placed_ids,
    route_both,
    rule_set,
)

PR: dict[str, Any] = {"form": "github.pr_checklist"}
SUPPRESS: dict[str, Any] = {"suppress": True}
EXAMPLES = Path(__file__).parents[2] / "rules" / "examples"


def _place(priority: int | None = None, **then: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"then": {**PR, **then}}
    if priority is not None:
        rule["priority"] = priority
    return rule


def _suppress(priority: int | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"then": SUPPRESS}
    if priority is not None:
        rule["priority"] = priority
    return rule


def _team(name: str, *rules: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return pack(name, *rules, level="team", team="payments", **fields)


@dataclass(frozen=True)
class Contest:
    """Several rules select one lesson; `winner` is the rule that places it (None: not placed)."""

    id: str
    packs: tuple[dict[str, Any], ...]
    winner: str | None
    mandate: Mandate | None = None
    lesson_mandate: Mandate = Mandate.INVITED


CONTESTS = [
    Contest("higher-priority-wins", (pack("org", _place(100), _place(200)),), "org/r2"),
    Contest(
        "higher-priority-wins-across-packs",
        (pack("a", _place(300)), _team("t", _place(200))),
        "a/r1",
    ),
    Contest(
        "tie-team-beats-organisation", (pack("org", _place()), _team("team", _place())), "team/r1"
    ),
    Contest(
        "tie-team-beats-organisation-whatever-the-file-order",
        (_team("a-team", _place()), pack("z-org", _place())),
        "a-team/r1",
    ),
    Contest("tie-same-level-earlier-rule-wins", (pack("org", _place(), _place()),), "org/r1"),
    Contest(
        "tie-same-level-earlier-file-wins",
        (pack("org-a", _place()), pack("org-b", _place())),
        "org-a/r1",
    ),
    Contest(
        "tie-between-team-packs-earlier-file-wins",
        (_team("t-a", _place()), _team("t-b", _place())),
        "t-a/r1",
    ),
    Contest(
        "rule-priority-overrides-pack-priority",
        (pack("high", _place(50), priority=500), pack("low", _place(), priority=100)),
        "low/r1",
    ),
    Contest(
        "rule-priority-lifts-rule-above-pack",
        (pack("high", _place(), priority=500), pack("low", _place(900), priority=100)),
        "low/r1",
    ),
    Contest(
        "pack-priority-is-the-default",
        (pack("high", _place(), priority=500), pack("low", _place(), priority=100)),
        "high/r1",
    ),
    Contest(
        "suppress-with-higher-priority-suppresses",
        (pack("org", _place(100), _suppress(200)),),
        None,
    ),
    Contest(
        "suppress-with-lower-priority-does-not",
        (pack("org", _place(200), _suppress(100)),),
        "org/r1",
    ),
    Contest("suppress-on-tie-earlier-rule-wins", (pack("org", _suppress(), _place()),), None),
    Contest("place-on-tie-earlier-rule-wins", (pack("org", _place(), _suppress()),), "org/r1"),
    Contest(
        "team-suppress-beats-organisation-default",
        (pack("org", _place()), _team("team", _suppress())),
        None,
    ),
    Contest(
        "team-suppress-cannot-remove-organisation-required",
        (pack("org", _place(mandate="required")), _team("team", _suppress(900))),
        "org/r1",
        Mandate.REQUIRED,
    ),
    Contest(
        "team-suppress-cannot-remove-required-lesson",
        (pack("org", _place()), _team("team", _suppress(900))),
        "org/r1",
        Mandate.REQUIRED,
        Mandate.REQUIRED,
    ),
    Contest(
        "organisation-suppress-can-remove-required",
        (pack("org", _place(100, mandate="required"), _suppress(200)),),
        None,
    ),
    Contest(
        "organisation-suppress-can-remove-required-lesson",
        (pack("org", _place(100), _suppress(200)),),
        None,
        None,
        Mandate.REQUIRED,
    ),
    Contest(
        "team-suppress-beats-lower-team-required",
        (_team("team", _place(100, mandate="required"), _suppress(200)),),
        None,
    ),
    Contest(
        "team-suppress-over-team-placement-yields-to-organisation-required",
        (pack("org", _place(100, mandate="required")), _team("team", _suppress(300), _place(200))),
        "org/r1",
        Mandate.REQUIRED,
    ),
    Contest(
        "team-suppress-does-not-revive-what-the-organisation-suppressed",
        (
            pack("org", _suppress(200), _place(100, mandate="required")),
            _team("team", _suppress(300)),
        ),
        None,
    ),
    Contest(
        "team-suppress-wins-when-organisation-best-rule-is-advisory",
        (pack("org", _place(200), _place(100, mandate="required")), _team("team", _suppress(300))),
        None,
    ),
    Contest(
        "organisation-suppress-beats-team-placement",
        (pack("org", _suppress(300)), _team("team", _place(200, mandate="required"))),
        None,
    ),
    Contest(
        "rule-mandate-raises",
        (pack("org", _place(mandate="required")),),
        "org/r1",
        Mandate.REQUIRED,
    ),
    Contest(
        "rule-mandate-raises-to-review",
        (pack("org", _place(mandate="review_and_justify")),),
        "org/r1",
        Mandate.REVIEW_AND_JUSTIFY,
    ),
    Contest(
        "rule-mandate-never-lowers",
        (pack("org", _place(mandate="invited")),),
        "org/r1",
        Mandate.REQUIRED,
        Mandate.REQUIRED,
    ),
    Contest(
        "rule-mandate-never-lowers-review",
        (pack("org", _place(mandate="invited")),),
        "org/r1",
        Mandate.REVIEW_AND_JUSTIFY,
        Mandate.REVIEW_AND_JUSTIFY,
    ),
    Contest(
        "no-rule-mandate-keeps-lessons",
        (pack("org", _place()),),
        "org/r1",
        Mandate.REVIEW_AND_JUSTIFY,
        Mandate.REVIEW_AND_JUSTIFY,
    ),
    Contest(
        "winner-mandate-not-the-strictest-candidate",
        (pack("org", _place(100, mandate="required"), _place(200)),),
        "org/r2",
        Mandate.INVITED,
    ),
]


@pytest.mark.parametrize("contest", CONTESTS, ids=[c.id for c in CONTESTS])
def test_precedence(contest: Contest) -> None:
    rules = rule_set(*contest.packs)
    placements = route_both(
        rules, [lesson("l1", mandate=contest.lesson_mandate)], item(team="payments")
    )
    assert [d.rule_id for d in placements] == ([contest.winner] if contest.winner else [])
    if contest.mandate is not None:
        assert placements[0].mandate == contest.mandate


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Mandate.REQUIRED, Mandate.INVITED, Mandate.REQUIRED),
        (Mandate.INVITED, Mandate.REQUIRED, Mandate.REQUIRED),
        (Mandate.REVIEW_AND_JUSTIFY, Mandate.INVITED, Mandate.REVIEW_AND_JUSTIFY),
        (Mandate.INVITED, Mandate.REVIEW_AND_JUSTIFY, Mandate.REVIEW_AND_JUSTIFY),
        (Mandate.REQUIRED, Mandate.REVIEW_AND_JUSTIFY, Mandate.REQUIRED),
        (Mandate.INVITED, Mandate.INVITED, Mandate.INVITED),
    ],
    ids=lambda v: v.value if isinstance(v, Mandate) else None,
)
def test_stricter(a: Mandate, b: Mandate, expected: Mandate) -> None:
    assert stricter(a, b) == expected
    assert MANDATE_ORDER[Mandate.REQUIRED] < MANDATE_ORDER[Mandate.INVITED]


def test_a_lesson_matched_by_several_rules_is_placed_once() -> None:
    rules = rule_set(
        pack("org", _place(), _place(), {"lesson": {"ids": ["l1"]}, "then": PR}),
        _team("team", _place()),
    )
    assert placed_ids(route_both(rules, [lesson("l1"), lesson("l2")], item())) == ["l1", "l2"]


def test_already_placed_lessons_are_not_placed_again() -> None:
    rules = rule_set(pack("org", _place()))
    lessons = [lesson("l1"), lesson("l2")]
    assert placed_ids(route_both(rules, lessons, item(), already_placed={"l1"})) == ["l2"]


def test_already_placed_lessons_count_against_the_budget() -> None:
    rules = rule_set(pack("org", _place(), budget={"max_items_per_work_item": 3}))
    lessons = [lesson(f"l{i}") for i in range(1, 6)]
    placements = route_both(rules, lessons, item(), already_placed=["l1", "gone"])
    assert placed_ids(placements) == ["l2"]


def test_budget_already_spent_places_only_required() -> None:
    rules = rule_set(pack("org", _place(), budget={"max_items_per_work_item": 1}))
    lessons = [lesson("l1"), lesson("l2", mandate=Mandate.REQUIRED)]
    placements = route_both(rules, lessons, item(), already_placed=["x", "y"])
    assert placed_ids(placements) == ["l2"]


def _budget_lessons() -> list[Lesson]:
    return [
        lesson("a-invited-low", severity_rank=5),
        lesson("b-invited", severity_rank=None),
        lesson("c-invited-severe", severity_rank=1),
        lesson("d-review", mandate=Mandate.REVIEW_AND_JUSTIFY),
        lesson("e-priority", severity_rank=4),
        lesson("f-invited-severe", severity_rank=1),
        lesson("g-required", mandate=Mandate.REQUIRED, severity_rank=5),
        lesson("h-required", mandate=Mandate.REQUIRED),
    ]


def _budget_rules(budget: int) -> Any:
    return rule_set(
        pack(
            "org",
            {"lesson": {"ids": ["e-priority"]}, "priority": 500, "then": PR},
            _place(),
            budget={"max_items_per_work_item": budget},
        )
    )


PREFERENCE = [
    "g-required",  # required first; severity 5 before none (rank 6)
    "h-required",
    "d-review",  # then review_and_justify
    "e-priority",  # then invited by priority
    "c-invited-severe",  # then by severity rank, ties by id
    "f-invited-severe",
    "a-invited-low",
    "b-invited",  # no severity sorts last
]


@pytest.mark.parametrize("budget", [1, 2, 3, 4, 5, 7, 8, 20], ids=lambda b: f"budget-{b}")
def test_fatigue_budget_order_of_preference(budget: int) -> None:
    placements = route_both(_budget_rules(budget), _budget_lessons(), item())
    assert placed_ids(placements) == PREFERENCE[: max(budget, 2)]


def test_required_lessons_are_placed_past_the_budget() -> None:
    lessons = [lesson(f"r{i}", mandate=Mandate.REQUIRED) for i in range(4)] + [lesson("x")]
    rules = rule_set(pack("org", _place(), budget={"max_items_per_work_item": 2}))
    assert placed_ids(route_both(rules, lessons, item())) == ["r0", "r1", "r2", "r3"]


def test_a_rule_raising_the_mandate_protects_a_lesson_from_the_budget() -> None:
    rules = rule_set(
        pack(
            "org",
            {"lesson": {"ids": ["z"]}, "then": {**PR, "mandate": "required"}},
            _place(),
            budget={"max_items_per_work_item": 1},
        )
    )
    lessons = [lesson("a"), lesson("b"), lesson("z")]
    assert placed_ids(route_both(rules, lessons, item())) == ["z"]


BUDGET_CASES = [
    ("default-is-five", (pack("org", _place()),), "payments", 5),
    (
        "organisation-budget",
        (pack("org", _place(), budget={"max_items_per_work_item": 3}),),
        None,
        3,
    ),
    (
        "strictest-organisation-budget",
        (
            pack("a", _place(), budget={"max_items_per_work_item": 4}),
            pack("b", _place(), budget={"max_items_per_work_item": 2}),
            pack("c", _place()),
        ),
        None,
        2,
    ),
    (
        "team-budget-for-its-team",
        (
            pack("org", _place(), budget={"max_items_per_work_item": 4}),
            _team("t", _place(), budget={"max_items_per_work_item": 1}),
        ),
        "payments",
        1,
    ),
    (
        "team-budget-may-be-looser",
        (
            pack("org", _place(), budget={"max_items_per_work_item": 2}),
            _team("t", _place(), budget={"max_items_per_work_item": 6}),
        ),
        "payments",
        6,
    ),
    (
        "team-budget-not-for-other-teams",
        (
            pack("org", _place(), budget={"max_items_per_work_item": 4}),
            _team("t", _place(), budget={"max_items_per_work_item": 1}),
        ),
        "web",
        4,
    ),
    (
        "team-budget-not-for-teamless-items",
        (
            pack("org", _place(), budget={"max_items_per_work_item": 4}),
            _team("t", _place(), budget={"max_items_per_work_item": 1}),
        ),
        None,
        4,
    ),
    (
        "team-pack-without-budget-uses-organisation",
        (pack("org", _place(), budget={"max_items_per_work_item": 2}), _team("t", _place())),
        "payments",
        2,
    ),
]


@pytest.mark.parametrize(
    ("packs", "team", "expected"),
    [case[1:] for case in BUDGET_CASES],
    ids=[case[0] for case in BUDGET_CASES],
)
def test_which_budget_applies(
    packs: tuple[dict[str, Any], ...], team: str | None, expected: int
) -> None:
    lessons = [lesson(f"l{i:02d}") for i in range(10)]
    placements = route_both(rule_set(*packs), lessons, item(team=team))
    assert len(placements) == expected


@pytest.mark.parametrize(
    ("due", "window"),
    [
        ("48h", timedelta(hours=48)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(weeks=2)),
        (None, None),
    ],
    ids=["hours", "days", "weeks", "none"],
)
@pytest.mark.parametrize("audience", list(Audience), ids=lambda a: a.value)
def test_due_window_and_audience_are_carried_into_the_decision(
    due: str | None, window: timedelta | None, audience: Audience
) -> None:
    then: dict[str, Any] = {**PR, "audience": audience.value}
    if due is not None:
        then["due"] = due
    rules = rule_set(pack("org", {"then": then}))
    (decision,) = route_both(rules, [lesson()], item())
    assert decision.due_in == window
    assert decision.audience == audience
    assert decision.form == EmbeddingForm.GITHUB_PR_CHECKLIST
    assert decision.rule_set_version == rules.version
    assert decision.lesson_version == 1


def test_decision_records_priority_and_severity() -> None:
    rules = rule_set(pack("org", _place(), priority=250))
    (with_rank,) = route_both(rules, [lesson(severity_rank=2)], item())
    (without,) = route_both(rules, [lesson()], item())
    assert (with_rank.priority, with_rank.severity_rank) == (250, 2)
    assert without.severity_rank == 6


def test_decision_text_renders_lesson_work_item_rule_and_due() -> None:
    text = (
        "[{{ rule.id }}|{{ due }}] {{ lesson.title }} ({{ lesson.id }}@{{ lesson.version }}, "
        "{{ lesson.mandate }}) on {{ work_item.ref }} for {{ work_item.team }}: "
        "{{ lesson.checklist | length }} checks"
    )
    rules = rule_set(pack("org", {"id": "pool", "then": {**PR, "due": "3d", "text": text}}))
    the_lesson = lesson(title="Size the pool", mandate=Mandate.REQUIRED)
    work_item = item(team="payments")
    (decision,) = route_both(rules, [the_lesson], work_item)
    rule = rules.packs[0].rules[0]
    assert decision.text(the_lesson, work_item, rule) == (
        "[pool|3d] Size the pool (l1@1, required) on github:acme/api#1 for payments: 0 checks"
    )


def test_decision_text_default_template() -> None:
    rules = rule_set(pack("org", _place()))
    the_lesson = lesson(title="T", statement="S")
    (decision,) = route_both(rules, [the_lesson], item())
    assert decision.text(the_lesson, item(), rules.packs[0].rules[0]) == "T: S"


def test_example_packs_route_a_payments_pull_request() -> None:
    """The shipped examples: the payments team makes pool lessons required and mutes frontend."""
    rules = build_rule_set((p.name, p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml")))
    pool = lesson("pool", applies=applicability(tags=["connection-pool"]), severity_rank=2)
    frontend = lesson("css", applies=applicability(tags=["frontend", "database"]))
    other = lesson("other", applies=applicability(tags=["database"]))
    pull_request = item(
        project="acme/payments-api",
        team="payments",
        base_branch="main",
        paths=["src/ledger/db/pool.py"],
    )
    placements = route_both(rules, [pool, frontend, other], pull_request)
    assert [(d.lesson_id, d.rule_id, d.mandate) for d in placements] == [
        ("pool", "team-payments/pool-sizing-is-required-here", Mandate.REQUIRED),
        ("other", "organisation/database-lessons-on-prs", Mandate.INVITED),
    ]
    assert placements[0].due_in == timedelta(days=3)


@pytest.mark.parametrize(
    ("team", "placed"),
    [("payments", ["l1"]), ("web", []), (None, [])],
    ids=["own-team", "other-team", "no-team"],
)
def test_a_team_pack_speaks_for_its_own_team_only(team: str | None, placed: list[str]) -> None:
    rules = rule_set(pack("payments", {"then": PR}, level="team", team="payments"))
    assert placed_ids(route_both(rules, [lesson("l1")], item(team=team))) == placed


def test_a_team_suppression_does_not_reach_other_teams() -> None:
    rules = rule_set(
        pack("org", {"then": PR}),
        pack("web", {"priority": 900, "then": SUPPRESS}, level="team", team="web"),
    )
    lessons = [lesson("l1")]
    assert placed_ids(route_both(rules, lessons, item(team="payments"))) == ["l1"]
    assert placed_ids(route_both(rules, lessons, item(team="web"))) == []


@pytest.mark.parametrize(
    ("shown", "expected"),
    [
        (0, ["r5", "r6", "r7"]),
        (3, ["r2", "r3", "r4", "r5", "r6", "r7"]),
        (9, [f"r{i}" for i in range(8)]),
    ],
    ids=["empty", "three-there", "over-already"],
)
def test_required_lessons_past_the_budget_are_grouped(shown: int, expected: list[str]) -> None:
    lessons = [lesson(f"r{i}", mandate=Mandate.REQUIRED) for i in range(8)] + [lesson("x")]
    rules = rule_set(pack("org", _place(), budget={"max_items_per_work_item": 5}))
    decisions = route_both(rules, lessons, item())
    assert grouped(decisions, budget=5, shown=shown) == frozenset(expected)


def test_a_training_assignment_is_never_grouped() -> None:
    lessons = [lesson(f"r{i}", mandate=Mandate.REQUIRED) for i in range(3)]
    decisions = route_both(rule_set(pack("org", _place())), lessons, item())
    training = [replace(d, form=EmbeddingForm.LMS_ASSIGNMENT) for d in decisions]
    assert grouped(training, budget=1, shown=0) == frozenset()
    assert grouped([training[0], *decisions[1:]], budget=1, shown=0) == {"r1", "r2"}
