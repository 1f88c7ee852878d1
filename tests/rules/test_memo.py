"""What the engine keeps between work items (per context, per key, per glob) never leaks into
another work item's result, and path patterns checked as keys agree with glob matching."""

from collections.abc import Sequence
from types import ModuleType
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.lesson import Mandate
from core.work import WorkItem
from rules import reference
from rules.engine import Engine
from rules.globs import compile_globs
from tests.rules.builders import BUILDS, applicability, item, lesson, pack, rule_set
from tests.rules.test_property import PATH_PATTERNS, PATHS, Case, cases


def _recombined(items: Sequence[WorkItem]) -> list[WorkItem]:
    """Every item's context (system, project, team, type, base branch) with every item's own
    labels, components and paths (where its system allows them)."""
    found = []
    for number, (context, own) in enumerate(((a, b) for a in items for b in items), start=1):
        found.append(
            context.model_copy(
                update={
                    "ref": f"{context.system.value}:{context.project}#{number}",
                    "labels": own.labels,
                    "components": own.components,
                    "changed_paths": own.changed_paths,
                }
            )
        )
    return found


each_build = pytest.mark.parametrize("build", list(BUILDS.values()), ids=list(BUILDS))
"""Run the test against every build of the engine (compiled and source)."""


def _agree(engine: Engine, case: Case, items: Sequence[WorkItem]) -> None:
    for work_item in items:
        expected = reference.route(case.rules, case.lessons, work_item)
        assert engine.route(work_item).placements == expected.placements


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_items=3))
@each_build
def test_work_items_sharing_a_context_each_get_their_own_result(
    build: ModuleType, case: Case
) -> None:
    """Items that share a context but differ in labels, components or paths, routed in turn and
    again in reverse by one engine, each get what the reference gives them."""
    engine = build.Engine(case.rules, case.lessons)
    items = _recombined([work_item for work_item, _ in case.items])
    _agree(engine, case, items)
    _agree(engine, case, items[::-1])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_items=3))
@each_build
def test_a_memo_cleared_at_every_step_changes_nothing(build: ModuleType, case: Case) -> None:
    """With room for one entry, every memo starts afresh all the time; results are the same."""
    with mock.patch.object(build, "_MEMO_SIZE", 1):
        engine = build.Engine(case.rules, case.lessons)
        items = _recombined([work_item for work_item, _ in case.items])
        _agree(engine, case, items + items)


RULES = rule_set(
    pack(
        "org",
        {
            "work_item": {"projects": ["acme/*"], "base_branches": ["main"]},
            "then": {"form": "github.pr_checklist"},
        },
        {"work_item": {"labels": ["db"]}, "then": {"form": "github.pr_checklist"}},
        {"work_item": {"paths": ["src/db/**"]}, "then": {"form": "github.pr_checklist"}},
    ),
    pack("team", {"then": {"form": "github.pr_checklist"}}, level="team", team="web"),
)
LESSONS = [
    lesson("l1", mandate=Mandate.REQUIRED, applies=applicability(repos=["acme/api"])),
    lesson("l2", applies=applicability(paths=["**/db/**"])),
    lesson("l3", applies=applicability(services=["db"])),
]


@pytest.mark.parametrize(
    "work_item",
    [
        item(base_branch="main"),
        item(base_branch="dev"),
        item(),
        item(base_branch="main", team="web"),
        item(project="acme/web", base_branch="main"),
        item(project="other/api", base_branch="main", labels=["db"]),
        item(base_branch="main", labels=["db"]),
        item(base_branch="main", paths=["src/db/pool.py"]),
        item(base_branch="main", paths=["src//db/pool.py"]),
        item(base_branch="main", paths=["lib/db/x.py", "README.md"]),
        item(team="web", paths=["src/api/x.py"], labels=["ui"]),
    ],
    ids=[
        "main",
        "unnamed-branch",
        "no-branch",
        "team",
        "other-repo",
        "other-owner-label",
        "label",
        "path",
        "unclean-path",
        "nested-path",
        "team-others",
    ],
)
@each_build
def test_each_context_field_and_own_value_counts(build: ModuleType, work_item: WorkItem) -> None:
    """One engine routes every item after all the others; each result is the reference's."""
    engine = build.Engine(RULES, LESSONS)
    case = Case(RULES, LESSONS, [])
    neighbours = [
        item(base_branch="release/1", team="web"),
        item(base_branch="main"),
        item(base_branch="dev", labels=["db"]),
        item(team="web", base_branch="main", paths=["src/db/x.py"]),
    ]
    _agree(engine, case, [*neighbours, work_item, *neighbours, work_item])


def _glob_for(build: ModuleType) -> object:
    def glob(patterns: Sequence[str]) -> object:
        regex = compile_globs(patterns)
        return None if regex is None else build._Glob(regex)

    return glob


CLEAN_PATHS = st.lists(st.sampled_from(["a", "b", "db", "src", ".x", "x.py"]), min_size=1).map(
    "/".join
)
KEYED_PATTERNS = st.sampled_from(
    ["a/**", "src/db/**", "**/db/**", "**/a/**", "db/**", ".x/**", "src/**/db/**", "a/b/c/**"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(KEYED_PATTERNS, st.sampled_from(PATH_PATTERNS)), min_size=1, max_size=3),
    st.lists(st.one_of(CLEAN_PATHS, st.sampled_from(PATHS)), min_size=1, max_size=4),
)
@each_build
def test_path_patterns_checked_as_keys_match_like_globs(
    build: ModuleType, patterns: list[str], paths: list[str]
) -> None:
    """`a/**`, `a/b/**` and `**/a/**` become key look-ups on clean paths, other patterns keep
    their regex behind a necessary segment; either way the verdict is glob matching's."""
    work_item = item(paths=paths)
    matcher = build._Paths(patterns, _glob_for(build))
    own, clean = build._OwnKeys(matcher.keys)(work_item)
    view = build._View(work_item, own, frozenset(), clean)
    expected = any(reference.glob_any(path, patterns) for path in paths)
    assert matcher.match(view) == expected


def _always(count: int) -> list[dict[str, object]]:
    """`count` rules every work item of acme/api matches, rule N selecting lesson `wN` only."""
    return [
        {
            "lesson": {"ids": [f"w{n}"]},
            "work_item": {"projects": ["acme/api"]},
            "then": {"form": "github.pr_checklist", "mandate": "required"},
        }
        for n in range(count)
    ]


@each_build
def test_every_list_of_a_context_is_read_however_many_rules_always_match(
    build: ModuleType,
) -> None:
    """Twelve rules match every item of one context, each placing its own required lesson: each
    item of the context, first or later, gets all twelve, as the reference does."""
    rules = rule_set(pack("org", *_always(12)))
    lessons = [lesson(f"w{n}") for n in range(12)]
    engine = build.Engine(rules, lessons)
    case = Case(rules, lessons, [])
    items = [
        item(number=1),
        item(project="acme/web", number=2),
        item(labels=["db"], paths=["src/db/pool.py"], number=3),
        item(base_branch="main", number=4),
    ]
    _agree(engine, case, items + items)
    assert sorted(d.lesson_id for d in engine.route(items[0]).placements) == sorted(
        f"w{n}" for n in range(12)
    )


@each_build
def test_lessons_excluded_from_the_first_codes_read_send_the_engine_deeper(
    build: ModuleType,
) -> None:
    """The strongest 40 lessons of a rule's list are excluded from acme/api: the engine reads
    past its first batch (budget + 4 codes) to the four that apply, on every item of the
    context, as the reference does."""
    excluded = [
        lesson(f"x{n:02d}", severity_rank=1, applies=applicability({"repos": ["acme/api"]}))
        for n in range(40)
    ]
    applying = [lesson(f"y{n}", severity_rank=5) for n in range(4)]
    rules = rule_set(
        pack(
            "org",
            {"lesson": {"owners": ["alice"]}, "then": {"form": "github.pr_checklist"}},
            budget={"max_items_per_work_item": 3},
        )
    )
    engine = build.Engine(rules, excluded + applying)
    case = Case(rules, excluded + applying, [])
    items = [item(number=1), item(labels=["db"], number=2), item(project="acme/web", number=3)]
    _agree(engine, case, items + items)
    assert [d.lesson_id for d in engine.route(items[1]).placements] == ["y0", "y1", "y2"]
    assert [d.lesson_id for d in engine.route(items[2]).placements] == ["x00", "x01", "x02"]
