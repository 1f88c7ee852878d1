"""Table tests: each lesson, work-item and applicability condition, through engine and reference."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from core.lesson import Applicability, LessonForm, Mandate
from core.work import System, WorkItem
from rules.loader import RuleSet
from tests.rules.builders import (
    applicability,
    item,
    lesson,
    pack,
    placed_ids,
    route_both,
    rule_set,
    skip_reason,
)

PR = {"form": "github.pr_checklist"}
JIRA = {"form": "jira.checklist"}


@dataclass(frozen=True)
class Case:
    """One rule, one lesson, one work item; placed or not, and if not, why."""

    id: str
    rule: dict[str, Any]
    placed: bool
    reason: str = ""
    lesson: dict[str, Any] = field(default_factory=dict)
    item: dict[str, Any] = field(default_factory=dict)


def _run(case: Case) -> None:
    rules = rule_set(pack("org", case.rule))
    the_lesson = lesson("l1", **case.lesson)
    work_item = item(**case.item)
    placements = route_both(rules, [the_lesson], work_item)
    assert placed_ids(placements) == (["l1"] if case.placed else [])
    if not case.placed:
        assert case.reason in skip_reason(rules, [the_lesson], work_item, "l1")


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


LESSON_CASES = [
    Case(
        "tags-any-matches",
        {"lesson": {"tags": ["x", "pool"]}, "then": PR},
        True,
        lesson={"applies": applicability(tags=["db", "pool"])},
    ),
    Case(
        "tags-none-match",
        {"lesson": {"tags": ["frontend"]}, "then": PR},
        False,
        "lesson.tags",
        lesson={"applies": applicability(tags=["db"])},
    ),
    Case("tags-lesson-has-none", {"lesson": {"tags": ["db"]}, "then": PR}, False, "lesson.tags"),
    Case(
        "services-match",
        {"lesson": {"services": ["api"]}, "then": PR},
        True,
        lesson={"applies": applicability(services=["api"])},
    ),
    Case(
        "services-miss",
        {"lesson": {"services": ["web"]}, "then": PR},
        False,
        "lesson.services",
        lesson={"applies": applicability(services=["api"])},
    ),
    Case(
        "components-match",
        {"lesson": {"components": ["pool"]}, "then": PR},
        True,
        lesson={"applies": applicability(components=["pool"])},
        item={"components": ["pool"]},
    ),
    Case(
        "components-miss",
        {"lesson": {"components": ["cache"]}, "then": PR},
        False,
        "lesson.components",
        lesson={"applies": applicability(components=["pool"])},
        item={"components": ["pool"]},
    ),
    Case(
        "forms-match",
        {"lesson": {"forms": ["checklist", "warning"]}, "then": PR},
        True,
        lesson={"form": LessonForm.WARNING},
    ),
    Case(
        "forms-miss",
        {"lesson": {"forms": ["training"]}, "then": PR},
        False,
        "lesson.forms",
        lesson={"form": LessonForm.CASE},
    ),
    Case(
        "mandates-match",
        {"lesson": {"mandates": ["required"]}, "then": PR},
        True,
        lesson={"mandate": Mandate.REQUIRED},
    ),
    Case(
        "mandates-miss",
        {"lesson": {"mandates": ["required"]}, "then": PR},
        False,
        "lesson.mandates",
        lesson={"mandate": Mandate.REVIEW_AND_JUSTIFY},
    ),
    Case("owners-match", {"lesson": {"owners": ["sre", "alice"]}, "then": PR}, True),
    Case("owners-miss", {"lesson": {"owners": ["sre"]}, "then": PR}, False, "lesson.owners"),
    Case("ids-match", {"lesson": {"ids": ["l1"]}, "then": PR}, True),
    Case("ids-miss", {"lesson": {"ids": ["l2"]}, "then": PR}, False, "lesson.ids"),
    Case(
        "min-severity-worse-passes",
        {"lesson": {"min_severity": "high"}, "then": PR},
        True,
        lesson={"severity_rank": 1},
    ),
    Case(
        "min-severity-equal-passes",
        {"lesson": {"min_severity": "high"}, "then": PR},
        True,
        lesson={"severity_rank": 2},
    ),
    Case(
        "min-severity-milder-fails",
        {"lesson": {"min_severity": "high"}, "then": PR},
        False,
        "severity",
        lesson={"severity_rank": 3},
    ),
    Case(
        "min-severity-without-severity-fails",
        {"lesson": {"min_severity": "info"}, "then": PR},
        False,
        "severity",
        lesson={"severity_rank": None},
    ),
    Case(
        "all-given-fields-must-match",
        {"lesson": {"tags": ["db"], "owners": ["sre"]}, "then": PR},
        False,
        "lesson.owners",
        lesson={"applies": applicability(tags=["db"])},
    ),
    Case("no-condition-selects-every-lesson", {"then": PR}, True),
]


@pytest.mark.parametrize("case", LESSON_CASES, ids=_ids(LESSON_CASES))
def test_lesson_condition(case: Case) -> None:
    _run(case)


WORK_ITEM_CASES = [
    Case("systems-match", {"work_item": {"systems": ["jira", "github"]}, "then": PR}, True),
    Case(
        "systems-miss",
        {"work_item": {"systems": ["jira"]}, "then": {"suppress": True}},
        False,
        "work_item.systems",
    ),
    Case("projects-literal", {"work_item": {"projects": ["acme/api"]}, "then": PR}, True),
    Case(
        "projects-literal-miss",
        {"work_item": {"projects": ["acme/web"]}, "then": PR},
        False,
        "work_item.projects",
    ),
    Case("projects-star", {"work_item": {"projects": ["acme/*"]}, "then": PR}, True),
    Case(
        "projects-star-not-across-slash",
        {"work_item": {"projects": ["*"]}, "then": PR},
        False,
        "work_item.projects",
    ),
    Case("projects-question-mark", {"work_item": {"projects": ["acme/ap?"]}, "then": PR}, True),
    Case(
        "projects-prefix-glob",
        {"work_item": {"projects": ["acme/payments-*"]}, "then": PR},
        True,
        item={"project": "acme/payments-ledger"},
    ),
    Case(
        "projects-prefix-glob-miss",
        {"work_item": {"projects": ["acme/payments-*"]}, "then": PR},
        False,
        "work_item.projects",
        item={"project": "acme/payments"},
    ),
    Case(
        "projects-jira-key-glob",
        {"work_item": {"projects": ["PA?"]}, "then": JIRA},
        True,
        item={"system": System.JIRA, "project": "PAY"},
    ),
    Case("projects-brace", {"work_item": {"projects": ["acme/{api,web}"]}, "then": PR}, True),
    Case(
        "paths-literal",
        {"work_item": {"paths": ["src/db/pool.py"]}, "then": PR},
        True,
        item={"paths": ["README.md", "src/db/pool.py"]},
    ),
    Case(
        "paths-any-changed-path",
        {"work_item": {"paths": ["deploy/**"]}, "then": PR},
        True,
        item={"paths": ["README.md", "deploy/k8s/api.yaml"]},
    ),
    Case(
        "paths-star-stays-in-segment",
        {"work_item": {"paths": ["src/*.py"]}, "then": PR},
        False,
        "work_item.paths",
        item={"paths": ["src/db/pool.py"]},
    ),
    Case(
        "paths-globstar-spans-segments",
        {"work_item": {"paths": ["src/**/*.py"]}, "then": PR},
        True,
        item={"paths": ["src/a/b/c/pool.py"]},
    ),
    Case(
        "paths-globstar-zero-segments",
        {"work_item": {"paths": ["src/**/pool.py"]}, "then": PR},
        True,
        item={"paths": ["src/pool.py"]},
    ),
    Case(
        "paths-globstar-in-middle",
        {"work_item": {"paths": ["src/**/db/**"]}, "then": PR},
        True,
        item={"paths": ["src/payments/db/pool.py"]},
    ),
    Case(
        "paths-globstar-in-middle-miss",
        {"work_item": {"paths": ["src/**/db/**"]}, "then": PR},
        False,
        "work_item.paths",
        item={"paths": ["src/payments/dbx/pool.py"]},
    ),
    Case(
        "paths-leading-globstar",
        {"work_item": {"paths": ["**/*.sql"]}, "then": PR},
        True,
        item={"paths": ["migrations/001.sql"]},
    ),
    Case(
        "paths-leading-globstar-top-level",
        {"work_item": {"paths": ["**/*.sql"]}, "then": PR},
        True,
        item={"paths": ["001.sql"]},
    ),
    Case(
        "paths-dot-directories",
        {"work_item": {"paths": ["**/*.yml"]}, "then": PR},
        True,
        item={"paths": [".github/workflows/ci.yml"]},
    ),
    Case(
        "paths-question-mark",
        {"work_item": {"paths": ["src/d?/**"]}, "then": PR},
        True,
        item={"paths": ["src/db/pool.py"]},
    ),
    Case(
        "paths-no-changed-paths",
        {"work_item": {"paths": ["**"]}, "then": PR},
        False,
        "work_item.paths",
    ),
    Case(
        "paths-directory-is-not-its-contents",
        {"work_item": {"paths": ["src/db/**"]}, "then": PR},
        False,
        "work_item.paths",
        item={"paths": ["src/dbx/pool.py"]},
    ),
    Case(
        "labels-match",
        {"work_item": {"labels": ["database", "perf"]}, "then": PR},
        True,
        item={"labels": ["perf"]},
    ),
    Case(
        "labels-miss",
        {"work_item": {"labels": ["database"]}, "then": PR},
        False,
        "work_item.labels",
        item={"labels": ["ui"]},
    ),
    Case(
        "labels-are-not-globs",
        {"work_item": {"labels": ["data*"]}, "then": PR},
        False,
        "work_item.labels",
        item={"labels": ["database"]},
    ),
    Case(
        "components-match",
        {"work_item": {"components": ["ledger"]}, "then": JIRA},
        True,
        item={"system": System.JIRA, "components": ["ledger", "ui"]},
    ),
    Case(
        "components-miss",
        {"work_item": {"components": ["ledger"]}, "then": JIRA},
        False,
        "work_item.components",
        item={"system": System.JIRA, "components": ["ui"]},
    ),
    Case(
        "types-match",
        {"work_item": {"types": ["Bug", "Story"]}, "then": JIRA},
        True,
        item={"system": System.JIRA, "type_": "Bug"},
    ),
    Case(
        "types-miss",
        {"work_item": {"types": ["Bug"]}, "then": JIRA},
        False,
        "work_item.types",
        item={"system": System.JIRA, "type_": "Epic"},
    ),
    Case("types-pull-request", {"work_item": {"types": ["pull_request"]}, "then": PR}, True),
    Case(
        "base-branches-match",
        {"work_item": {"base_branches": ["main"]}, "then": PR},
        True,
        item={"base_branch": "main"},
    ),
    Case(
        "base-branches-miss",
        {"work_item": {"base_branches": ["main"]}, "then": PR},
        False,
        "work_item.base_branches",
        item={"base_branch": "dev"},
    ),
    Case(
        "base-branches-none",
        {"work_item": {"base_branches": ["main"]}, "then": PR},
        False,
        "work_item.base_branches",
    ),
    Case(
        "teams-match",
        {"work_item": {"teams": ["payments"]}, "then": PR},
        True,
        item={"team": "payments"},
    ),
    Case(
        "teams-miss",
        {"work_item": {"teams": ["payments"]}, "then": PR},
        False,
        "work_item.teams",
        item={"team": "web"},
    ),
    Case(
        "teams-item-without-team",
        {"work_item": {"teams": ["payments"]}, "then": PR},
        False,
        "work_item.teams",
    ),
    Case(
        "every-given-field-must-match",
        {"work_item": {"labels": ["db"], "teams": ["web"]}, "then": PR},
        False,
        "work_item.teams",
        item={"labels": ["db"], "team": "payments"},
    ),
]


@pytest.mark.parametrize("case", WORK_ITEM_CASES, ids=_ids(WORK_ITEM_CASES))
def test_work_item_condition(case: Case) -> None:
    _run(case)


FIT_CASES = [
    Case("jira-form-never-on-github", {"then": JIRA}, False, "does not fit"),
    Case("jira-subtask-never-on-github", {"then": {"form": "jira.subtask"}}, False, "does not fit"),
    Case(
        "github-form-never-on-jira",
        {"then": PR},
        False,
        "does not fit",
        item={"system": System.JIRA},
    ),
    Case(
        "lms-form-never-on-jira",
        {"then": {"form": "lms.assignment"}},
        False,
        "does not fit",
        item={"system": System.JIRA},
    ),
    Case(
        "lms-form-on-lms", {"then": {"form": "lms.assignment"}}, True, item={"system": System.LMS}
    ),
    Case(
        "lms-form-on-jira-when-the-rule-names-jira",  # work-driven: trains the assignee
        {"work_item": {"systems": ["jira"]}, "then": {"form": "lms.assignment"}},
        True,
        item={"system": System.JIRA},
    ),
    Case(
        "lms-form-on-github-when-the-rule-names-github",
        {"work_item": {"systems": ["github"]}, "then": {"form": "lms.assignment"}},
        True,
    ),
    Case(
        "lms-form-never-on-github-when-the-rule-names-jira",
        {"work_item": {"systems": ["jira"]}, "then": {"form": "lms.assignment"}},
        False,
        "does not fit",
    ),
    Case(
        "jira-subtask-on-jira",
        {"then": {"form": "jira.subtask"}},
        True,
        item={"system": System.JIRA},
    ),
    Case(
        "pr-template-never-per-pr",
        {"then": {"form": "github.pr_template"}},
        False,
        "per repository",
    ),
    Case(
        "pr-template-never-per-pr-even-when-asked",
        {
            "work_item": {"systems": ["github"], "types": ["pull_request"]},
            "then": {"form": "github.pr_template"},
        },
        False,
        "per repository",
    ),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=_ids(FIT_CASES))
def test_form_fits_the_work_item_system(case: Case) -> None:
    _run(case)


def _a(**fields: Any) -> dict[str, Any]:
    return {"applies": applicability(**fields)}


APPLICABILITY_CASES = [
    Case("empty-applicability-applies-everywhere", {"then": PR}, True),
    Case(
        "services-match-component",
        {"then": JIRA},
        True,
        lesson=_a(services=["ledger"]),
        item={"system": System.JIRA, "components": ["ledger"]},
    ),
    Case(
        "services-match-label",
        {"then": PR},
        True,
        lesson=_a(services=["ledger"]),
        item={"labels": ["ledger"]},
    ),
    Case(
        "services-match-repo-name",
        {"then": PR},
        True,
        lesson=_a(services=["api"]),
        item={"project": "acme/api"},
    ),
    Case(
        "services-do-not-match-repo-owner",
        {"then": PR},
        False,
        "applicability.services",
        lesson=_a(services=["acme"]),
        item={"project": "acme/api"},
    ),
    Case(
        "services-match-jira-project",
        {"then": JIRA},
        True,
        lesson=_a(services=["PAY"]),
        item={"system": System.JIRA},
    ),
    Case(
        "services-outside",
        {"then": PR},
        False,
        "applicability.services",
        lesson=_a(services=["web"]),
    ),
    Case(
        "components-match",
        {"then": JIRA},
        True,
        lesson=_a(components=["ledger"]),
        item={"system": System.JIRA, "components": ["ledger"]},
    ),
    Case(
        "components-not-labels",
        {"then": PR},
        False,
        "applicability.components",
        lesson=_a(components=["ledger"]),
        item={"labels": ["ledger"]},
    ),
    Case("repos-glob", {"then": PR}, True, lesson=_a(repos=["acme/*"])),
    Case("repos-outside", {"then": PR}, False, "applicability.repos", lesson=_a(repos=["other/*"])),
    Case(
        "paths-globstar",
        {"then": PR},
        True,
        lesson=_a(paths=["src/**/db/**"]),
        item={"paths": ["src/x/db/a.py"]},
    ),
    Case(
        "paths-outside",
        {"then": PR},
        False,
        "applicability.paths",
        lesson=_a(paths=["src/**/db/**"]),
        item={"paths": ["docs/db.md"]},
    ),
    Case(
        "teams-match", {"then": PR}, True, lesson=_a(teams=["payments"]), item={"team": "payments"}
    ),
    Case(
        "teams-outside",
        {"then": PR},
        False,
        "applicability.teams",
        lesson=_a(teams=["payments"]),
        item={"team": "web"},
    ),
    Case(
        "tags-do-not-constrain",
        {"then": PR},
        True,
        lesson=_a(tags=["frontend"]),
        item={"labels": ["backend"]},
    ),
    Case(
        "every-field-must-hold",
        {"then": PR},
        False,
        "applicability.teams",
        lesson=_a(services=["api"], teams=["payments"]),
        item={"team": "web"},
    ),
    Case(
        "exclusion-services",
        {"then": PR},
        False,
        "applicability.exclusions.services",
        lesson=_a(exclusions={"services": ["api"]}),
    ),
    Case(
        "exclusion-components",
        {"then": JIRA},
        False,
        "applicability.exclusions.components",
        lesson=_a(exclusions={"components": ["legacy"]}),
        item={"system": System.JIRA, "components": ["legacy"]},
    ),
    Case(
        "exclusion-repos",
        {"then": PR},
        False,
        "applicability.exclusions.repos",
        lesson=_a(exclusions={"repos": ["acme/a*"]}),
    ),
    Case(
        "exclusion-paths",
        {"then": PR},
        False,
        "applicability.exclusions.paths",
        lesson=_a(exclusions={"paths": ["**/*.md"]}),
        item={"paths": ["src/a.py", "docs/x.md"]},
    ),
    Case(
        "exclusion-teams",
        {"then": PR},
        False,
        "applicability.exclusions.teams",
        lesson=_a(exclusions={"teams": ["web"]}),
        item={"team": "web"},
    ),
    Case(
        "exclusion-tags-match-labels",
        {"then": PR},
        False,
        "applicability.exclusions.tags",
        lesson=_a(exclusions={"tags": ["hotfix"]}),
        item={"labels": ["hotfix"]},
    ),
    Case(
        "exclusion-not-touched",
        {"then": PR},
        True,
        lesson=_a(exclusions={"teams": ["web"], "tags": ["hotfix"], "repos": ["other/*"]}),
        item={"team": "payments", "labels": ["feature"]},
    ),
    Case(
        "exclusion-beats-inclusion",
        {"then": PR},
        False,
        "applicability.exclusions.paths",
        lesson=_a(paths=["src/**"], exclusions={"paths": ["src/legacy/**"]}),
        item={"paths": ["src/legacy/a.py"]},
    ),
    Case(
        "override-ignores-scope",
        {"override_applicability": True, "then": PR},
        True,
        lesson=_a(teams=["payments"]),
        item={"team": "web"},
    ),
    Case(
        "override-ignores-exclusions",
        {"override_applicability": True, "then": PR},
        True,
        lesson=_a(exclusions={"tags": ["hotfix"]}),
        item={"labels": ["hotfix"]},
    ),
    Case(
        "override-keeps-rule-conditions",
        {"override_applicability": True, "work_item": {"teams": ["payments"]}, "then": PR},
        False,
        "work_item.teams",
        lesson=_a(teams=["payments"]),
        item={"team": "web"},
    ),
]


@pytest.mark.parametrize("case", APPLICABILITY_CASES, ids=_ids(APPLICABILITY_CASES))
def test_lesson_applicability(case: Case) -> None:
    _run(case)


def test_override_applies_per_rule_not_per_lesson() -> None:
    """An overriding rule places the lesson even though another, non-overriding rule could not."""
    applies: Applicability = applicability(teams=["payments"])
    rules = rule_set(
        pack(
            "org",
            {"priority": 300, "then": PR},
            {"priority": 100, "override_applicability": True, "then": PR},
        )
    )
    placements = route_both(rules, [lesson("l1", applies=applies)], item(team="web"))
    assert [d.rule_id for d in placements] == ["org/r2"]


def test_explain_reports_the_rule_that_got_furthest() -> None:
    """With one rule failing on the work item and one on applicability, the latter is named."""
    rules = rule_set(
        pack(
            "org",
            {"work_item": {"labels": ["db"]}, "then": PR},
            {"then": PR},
        )
    )
    the_lesson = lesson("l1", applies=applicability(teams=["payments"]))
    reason = skip_reason(rules, [the_lesson], item(), "l1")
    assert reason.startswith("org/r2: applicability.teams")


def test_explain_names_lessons_no_rule_considers() -> None:
    rules: RuleSet = rule_set(pack("org", {"lesson": {"ids": ["other"]}, "then": PR}))
    work_item: WorkItem = item()
    assert skip_reason(rules, [lesson("l1")], work_item, "l1") == (
        "org/r1: lesson.ids: 'l1' matches none of ['other']"
    )
    assert route_both(rules, [lesson("l1")], work_item) == ()


def test_many_lessons_each_judged_on_its_own() -> None:
    """The same rule, three lessons: the engine's lesson index selects exactly the matching ones."""
    rules = rule_set(pack("org", {"lesson": {"tags": ["db"], "owners": ["alice"]}, "then": PR}))
    lessons = [
        lesson("a", applies=applicability(tags=["db"])),
        lesson("b", applies=applicability(tags=["db"]), owner="bob"),
        lesson("c", applies=applicability(tags=["ui"])),
        lesson("d", applies=applicability(tags=["db", "ui"])),
    ]
    assert placed_ids(route_both(rules, lessons, item())) == ["a", "d"]


def test_system_item_without_rules_for_it() -> None:
    rules = rule_set(pack("org", {"then": PR}))
    assert route_both(rules, [lesson()], item(System.LMS)) == ()


def test_every_condition_at_once() -> None:
    """A rule with every condition given places only when all of them hold."""
    rule = {
        "lesson": {
            "tags": ["db"],
            "services": ["api"],
            "components": ["pool"],
            "forms": ["checklist"],
            "mandates": ["review_and_justify"],
            "owners": ["alice"],
            "ids": ["l1"],
            "min_severity": "medium",
        },
        "work_item": {
            "systems": ["github"],
            "projects": ["acme/*"],
            "paths": ["src/**"],
            "labels": ["db"],
            "components": ["pool"],
            "types": ["pull_request"],
            "base_branches": ["main"],
            "teams": ["payments"],
        },
        "then": PR,
    }
    rules = rule_set(pack("org", rule))
    the_lesson = lesson(
        "l1",
        form=LessonForm.CHECKLIST,
        mandate=Mandate.REVIEW_AND_JUSTIFY,
        severity_rank=3,
        applies=applicability(tags=["db"], services=["api"], components=["pool"]),
    )
    fits = {
        "labels": ["db"],
        "components": ["pool"],
        "paths": ["src/db.py"],
        "base_branch": "main",
        "team": "payments",
    }
    assert placed_ids(route_both(rules, [the_lesson], item(**fits))) == ["l1"]
    for key, other in (
        ("labels", ["ui"]),
        ("components", ["ui"]),
        ("paths", ["docs/db.md"]),
        ("base_branch", "dev"),
        ("team", "web"),
    ):
        assert route_both(rules, [the_lesson], item(**(fits | {key: other}))) == (), key
