"""Property: the indexed engine places exactly what the naive reference evaluator places."""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings, target
from hypothesis import strategies as st

from core.lesson import Applicability, Lesson, LessonForm, Mandate
from core.placement import EmbeddingForm
from core.work import System, WorkItem
from rules import reference
from rules.globs import compile_globs
from rules.loader import RuleSet, build_rule_set
from tests.rules.builders import ENGINES, applicability, item, lesson, pack, rule_set

T = TypeVar("T")

# Small vocabularies, overlapping on purpose (a tag is also a label, a service is a repo name,
# a component is a label), so that conditions on both sides often meet.
TAGS = ("db", "pool", "frontend", "auth")
SERVICES = ("api", "payments", "web")
COMPONENTS = ("db", "cache", "ui")
OWNERS = ("alice", "platform")
TEAMS = ("payments", "web", "platform")
ITEM_TEAMS = ("payments", "payments", "payments", "web", "platform", None)
LABELS = ("db", "api", "frontend", "urgent")
BRANCHES = ("main", "dev")
LESSON_IDS = tuple(f"l{i}" for i in range(7))
PROJECTS = {
    System.GITHUB: (
        "acme/api",
        "acme/payments-api",
        "acme/web",
        "other/api",
        "acme/api/",
        "acme//web",
    ),
    System.JIRA: ("PAY", "WEB"),
    System.LMS: ("onboarding",),
}
TYPES = {
    System.GITHUB: ("pull_request",),
    System.JIRA: ("Story", "Bug", "Task"),
    System.LMS: ("course",),
}
PATHS = (
    "src/db/pool.py",
    "src/api/handlers.py",
    "src/a/b/db/schema.sql",
    "deploy/k8s.yaml",
    "README.md",
    ".github/workflows/ci.yml",
    "src/db",
    # Spellings glob matching treats specially: runs of slashes, trailing slash, dot segments.
    "src//db/pool.py",
    "src/db/",
    "./src/x.py",
    "/src/abs.py",
    "src/../etc/x.py",
)
PROJECT_PATTERNS = (
    *PROJECTS[System.GITHUB],
    *PROJECTS[System.JIRA],
    "acme/*",
    "*/api",
    "acme/payments-*",
    "acme/?eb",
    "acme/{api,web}",
    "**",
    "*",
    "PA?",
    "[PW]*",
    "acme/a\\pi",
    "acme//api",
    "acme/api/",
    "/acme/*",
    "./acme/*",
    "acme/./web",
)
PATH_PATTERNS = (
    *PATHS,
    "src/**",
    "src/**/db/**",
    "**/db/**",
    "**/*.py",
    "**/*.sql",
    "deploy/*",
    "*.md",
    "src/?b/**",
    "src/d?/*.py",
    ".github/**",
    "**",
    "{src,deploy}/**",
    "src/db/*",
    "src/*",
    "s\\rc/**",
    "./src/**",
    "/src/**",
    "src/./db/**",
    "src//db/**",
    "src/db/",
    "src/../etc/*",
    "src/db/pool.p[y]",
)


def sparse(
    values: Sequence[str], max_size: int = 2, one_in: int = 8
) -> st.SearchStrategy[list[str]]:
    """Usually empty (an unconstrained field), one time in `one_in` a few values from `values`."""
    some = st.lists(st.sampled_from(values), min_size=1, max_size=max_size, unique=True)
    return st.integers(1, one_in).flatmap(lambda n: some if n == 1 else st.just([]))


def maybe(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.one_of(st.none(), strategy)


def _drop_empty(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v not in ([], None)}


lesson_conditions = st.builds(
    lambda tags, services, components, forms, mandates, owners, ids, severity: _drop_empty(
        {
            "tags": tags,
            "services": services,
            "components": components,
            "forms": forms,
            "mandates": mandates,
            "owners": owners,
            "ids": ids,
            "min_severity": severity,
        }
    ),
    sparse(TAGS),
    sparse(SERVICES, 2, 16),
    sparse(COMPONENTS, 2, 16),
    sparse([f.value for f in LessonForm]),
    sparse([m.value for m in Mandate]),
    sparse(OWNERS, 1),
    sparse(LESSON_IDS, 3),
    st.sampled_from([None] * 8 + ["critical", "high", "medium", "info"]),
)


WEIGHT = 5


@dataclass(frozen=True)
class Pool:
    """Values conditions are drawn from: the vocabularies plus, `WEIGHT` times over, values
    taken from the case's own work items, so that rules and applicability often meet them."""

    projects: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[str, ...]
    components: tuple[str, ...]
    teams: tuple[str, ...]
    services: tuple[str, ...]
    systems: tuple[System, ...]
    types: tuple[str, ...]
    branches: tuple[str, ...]
    one_in: int
    """A field of a rule or applicability is given about one time in `one_in` ..."""
    single: bool
    """... or, when `single`, rules and applicability give at most one field each, so that
    every index dimension (exact project, project prefix, component, label, team, branch, type,
    leading path segments, system) gets to decide on its own."""

    @classmethod
    def around(cls, items: Sequence[WorkItem], one_in: int, single: bool) -> "Pool":
        projects: list[str] = []
        paths: list[str] = []
        for work_item in items:
            project = work_item.project
            projects += [project, project[: len(project) // 2] + "*"]
            if "/" in project:
                owner, name = project.split("/", 1)
                projects += [f"{owner}/*", f"*/{name}", f"{owner}//{name}", f"{project}/"]
            for path in work_item.changed_paths:
                segments = path.split("/")
                paths += [path, f"{segments[0]}/**", "/".join(segments[:2]) + "/*"]
                paths += ["/".join(segments[:2]) + "/**", f"**/{segments[-1]}"]
        names = [w.project.rsplit("/", 1)[-1] for w in items if w.project.rsplit("/", 1)[-1]]
        labels = [label for w in items for label in w.labels]
        components = [c for w in items for c in w.components]
        teams = [w.team for w in items if w.team]
        return cls(
            projects=PROJECT_PATTERNS + tuple(projects) * WEIGHT,
            paths=PATH_PATTERNS + tuple(paths) * WEIGHT,
            labels=LABELS + tuple(labels) * WEIGHT,
            components=COMPONENTS + tuple(components) * WEIGHT,
            teams=TEAMS + tuple(teams) * WEIGHT,
            services=SERVICES + tuple(names + labels + components) * WEIGHT,
            systems=tuple(System) + tuple(w.system for w in items) * WEIGHT,
            types=("pull_request", "Story", "Bug", "course")
            + tuple(w.type for w in items) * WEIGHT,
            branches=BRANCHES + tuple(w.base_branch for w in items if w.base_branch) * WEIGHT,
            one_in=one_in,
            single=single,
        )


FORMS = (*EmbeddingForm, *[EmbeddingForm.GITHUB_PR_CHECKLIST] * 3, EmbeddingForm.JIRA_CHECKLIST)
"""Per-PR checklists are likelier than templates (which never land on a pull request)."""


def one_field(fields: dict[str, Sequence[str]]) -> st.SearchStrategy[dict[str, list[str]]]:
    """Nothing, or one of `fields` with one or two of its values."""
    return st.one_of(
        st.just({}),
        st.sampled_from(sorted(fields)).flatmap(
            lambda name: st.lists(
                st.sampled_from(fields[name]), min_size=1, max_size=2, unique=True
            ).map(lambda values: {name: values})
        ),
    )


def work_item_conditions(pool: Pool) -> st.SearchStrategy[dict[str, Any]]:
    """Which work items a rule applies to."""
    if pool.single:
        return one_field(
            {
                "systems": [s.value for s in pool.systems],
                "projects": pool.projects,
                "paths": pool.paths,
                "labels": pool.labels,
                "components": pool.components,
                "types": pool.types,
                "base_branches": pool.branches,
                "teams": pool.teams,
            }
        )
    return st.builds(
        lambda systems, projects, paths, labels, components, types, branches, teams: _drop_empty(
            {
                "systems": systems,
                "projects": projects,
                "paths": paths,
                "labels": labels,
                "components": components,
                "types": types,
                "base_branches": branches,
                "teams": teams,
            }
        ),
        sparse([s.value for s in System], 2, 8),
        sparse(pool.projects, 2, pool.one_in),
        sparse(pool.paths, 2, pool.one_in),
        sparse(pool.labels, 2, pool.one_in),
        sparse(pool.components, 2, pool.one_in),
        sparse(pool.types, 2, pool.one_in + 1),
        sparse(pool.branches, 1, pool.one_in + 1),
        sparse(pool.teams, 1, pool.one_in),
    )


@st.composite
def rules(draw: st.DrawFn, number: int, pool: Pool) -> dict[str, Any]:
    """One rule whose form fits its `systems` (the loader rejects the rest)."""
    condition = draw(work_item_conditions(pool))
    rule: dict[str, Any] = {"id": f"r{number}"}
    if draw(st.integers(0, 5)) == 0:
        then: dict[str, Any] = {"suppress": True}
    else:
        system = draw(st.sampled_from(pool.systems)).value
        form = draw(st.sampled_from([f for f in FORMS if f.value.startswith(system + ".")]))
        then = {"form": form.value}
        if "systems" in condition and system not in condition["systems"]:
            condition["systems"] = [*condition["systems"], system]
        mandate = draw(maybe(st.sampled_from([m.value for m in Mandate])))
        if mandate is not None:
            then["mandate"] = mandate
        due = draw(maybe(st.sampled_from(["48h", "7d", "2w"])))
        if due is not None:
            then["due"] = due
        then["audience"] = draw(st.sampled_from(["assignee", "author", "team", "reviewers"]))
    rule["then"] = then
    rule["lesson"] = draw(lesson_conditions)
    if then.get("suppress") and not rule["lesson"]:
        rule["lesson"] = {"tags": [draw(st.sampled_from(TAGS))]}  # opt out of something
    rule["work_item"] = condition
    priority = draw(st.sampled_from([None, None, 50, 100, 150]))
    if priority is not None:
        rule["priority"] = priority
    if draw(st.integers(0, 3)) == 0:
        rule["override_applicability"] = True
    return rule


@st.composite
def rule_sets(draw: st.DrawFn, pool: Pool) -> RuleSet:
    """1-4 packs (organisation or team, with ties on priority), loaded through the YAML loader."""
    packs = []
    for number in range(draw(st.integers(1, 4))):
        fields: dict[str, Any] = {"priority": draw(st.sampled_from([50, 100, 100, 150]))}
        if draw(st.booleans()):
            # Team packs apply to their own team's items only; favour the team items usually have.
            fields |= {"level": "team", "team": draw(st.sampled_from(pool.teams))}
        budget = draw(maybe(st.integers(1, 4)))
        if budget is not None:
            fields["budget"] = {"max_items_per_work_item": budget}
        count = draw(st.integers(1, 5))
        packs.append(
            {
                "pack": f"p{number}",
                **fields,
                "rules": [draw(rules(i, pool)) for i in range(count)],
            }
        )
    # File names are drawn, so file order (a precedence tie-breaker) differs from pack order.
    names = draw(st.permutations([f"{chr(97 + i)}.yaml" for i in range(len(packs))]))
    return build_rule_set((n, yaml.safe_dump(p)) for n, p in zip(names, packs, strict=True))


@st.composite
def lessons(draw: st.DrawFn, pool: Pool) -> list[Lesson]:
    """Up to seven published lessons with distinct ids and varied fields and applicability."""
    places: dict[str, Sequence[str]] = {
        "services": pool.services,
        "components": pool.components,
        "repos": pool.projects,
        "paths": pool.paths,
        "teams": pool.teams,
    }
    ids = draw(st.lists(st.sampled_from(LESSON_IDS), min_size=1, max_size=7, unique=True))
    found = []
    for lesson_id in ids:
        if pool.single:
            scope = draw(one_field(places))
            exclusions = draw(st.one_of(st.just({}), one_field({**places, "tags": pool.labels})))
        else:
            sizes = {"services": 2, "components": 2, "repos": 3, "paths": 3, "teams": 2}
            scope = _drop_empty(
                {k: draw(sparse(v, sizes[k], pool.one_in + 1)) for k, v in places.items()}
            )
            rare = 2 * pool.one_in + 2
            exclusions = _drop_empty(
                {k: draw(sparse(v, 1, rare)) for k, v in {**places, "tags": pool.labels}.items()}
            )
        found.append(
            lesson(
                lesson_id,
                form=draw(st.sampled_from(list(LessonForm))),
                mandate=draw(st.sampled_from(list(Mandate))),
                owner=draw(st.sampled_from(OWNERS)),
                severity_rank=draw(maybe(st.integers(1, 5))),
                applies=applicability(
                    exclusions=exclusions, tags=draw(sparse(TAGS, 3, 2)), **scope
                ),
            )
        )
    return found


@st.composite
def work_items(draw: st.DrawFn) -> WorkItem:
    """A GitHub pull request, a Jira issue or an LMS course with values from the vocabularies."""
    system = draw(st.sampled_from([*System, System.GITHUB]))
    return item(
        system,
        project=draw(st.sampled_from(PROJECTS[system])),
        type_=draw(st.sampled_from(TYPES[system])),
        labels=draw(st.lists(st.sampled_from(LABELS), max_size=3, unique=True)),
        components=draw(st.lists(st.sampled_from(COMPONENTS), max_size=2, unique=True)),
        paths=draw(st.lists(st.sampled_from(PATHS), max_size=3, unique=True))
        if system == System.GITHUB
        else [],
        base_branch=draw(maybe(st.sampled_from(BRANCHES))) if system == System.GITHUB else None,
        team=draw(st.sampled_from(ITEM_TEAMS)),
    )


@dataclass(frozen=True)
class Case:
    """A rule set, the published lessons, some work items and what each already carries."""

    rules: RuleSet
    lessons: list[Lesson]
    items: list[tuple[WorkItem, frozenset[str]]]


@st.composite
def cases(draw: st.DrawFn, max_items: int = 3, single: bool = False) -> Case:
    """Broad cases (several items, several sparse conditions per rule) or, with `single`,
    targeted ones: one item, and at most one condition per rule and per applicability."""
    items = draw(st.lists(work_items(), min_size=1, max_size=max_items))
    pool = Pool.around(items, 9, single)
    the_lessons = draw(lessons(pool))
    known = [lesson.id for lesson in the_lessons] + ["retired-lesson"]
    carried = [frozenset(draw(sparse(known, 3, 3))) for _ in items]
    return Case(draw(rule_sets(pool)), the_lessons, list(zip(items, carried, strict=True)))


def _kinds_of_skip(routing: Any) -> set[str]:
    kinds = set()
    for skipped in routing.skipped:
        for kind in ("suppressed by", "over the fatigue budget", "already placed"):
            if skipped.reason.startswith(kind):
                kinds.add(kind)
    return kinds


def _check(case: Case, observe: Callable[[int, set[str]], None] | None = None) -> int:
    """Route every item through the reference and every engine build; they must agree. Returns
    the placements made."""
    engines = [engine(case.rules, case.lessons) for engine in ENGINES]
    placed = 0
    for work_item, already in case.items:
        expected = reference.route(case.rules, case.lessons, work_item, already_placed=already)
        for engine in engines:
            got = engine.route(work_item, already_placed=already)
            assert got.placements == expected.placements, type(engine).__module__
        placed += len(expected.placements)
        event("places something" if expected.placements else "places nothing")
        if observe is not None:
            explained = reference.route(
                case.rules, case.lessons, work_item, already_placed=already, explain=True
            )
            assert explained.placements == expected.placements
            observe(len(expected.placements), _kinds_of_skip(explained))
    return placed


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
@example(
    Case(
        rule_set(
            pack(
                "org",
                {"work_item": {"projects": ["acme/*"]}, "then": {"form": "github.pr_checklist"}},
            ),
            pack("team", {"priority": 300, "then": {"suppress": True}}, level="team", team="web"),
        ),
        [lesson("l1"), lesson("l2", mandate=Mandate.REQUIRED)],
        [(item(team="web"), frozenset()), (item(System.JIRA), frozenset({"l1"}))],
    )
)
def test_engine_agrees_with_reference(case: Case) -> None:
    target(float(_check(case)), label="placements")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_items=1, single=True))
def test_engine_agrees_with_reference_on_targeted_cases(case: Case) -> None:
    target(float(_check(case)), label="placements")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_engine_applicability_agrees_with_reference(case: Case) -> None:
    """`Engine.applicable` (what the held-back lessons are decided with) finds a lesson
    applicable exactly where the reference finds no applicability failure."""
    for build in ENGINES:
        engine = build(case.rules, case.lessons)
        for work_item, _ in case.items:
            expected = {
                n
                for n, found in enumerate(engine.lessons)
                if reference.applicability_failure(found, work_item) is None
            }
            event("some applicable" if expected else "none applicable")
            assert engine.applicable(work_item, range(len(engine.lessons))) == expected


@pytest.mark.parametrize("single", [False, True], ids=["broad", "targeted"])
def test_generated_cases_exercise_the_interesting_paths(single: bool) -> None:
    """Guard against a vacuous property: many cases place lessons, and every skip reason occurs."""
    counts: Counter[str] = Counter()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(cases(max_items=1, single=True) if single else cases())
    def run(case: Case) -> None:
        counts["cases"] += 1
        before = counts["placing"]

        def observe(count: int, kinds: set[str]) -> None:
            counts["items"] += 1
            counts["placing"] += count > 0
            counts["several"] += count > 1
            counts.update(kinds)

        _check(case, observe)
        counts["cases placing"] += counts["placing"] > before

    run()
    # The targeted strategy isolates one condition per rule, and team packs only speak for
    # their own team's items, so fewer of its cases place; a fifth is still far from vacuous.
    share, cases_share, each = (0.2, 0.25, 5) if single else (0.3, 0.4, 10)
    assert counts["placing"] >= share * counts["items"], counts
    assert counts["cases placing"] >= cases_share * counts["cases"], counts
    assert counts["several"] >= 0.1 * counts["items"], counts
    for kind in ("suppressed by", "over the fatigue budget", "already placed"):
        assert counts[kind] >= each, counts


GLOB_ALPHABET = st.sampled_from(["a", "b", "/", ".", "*", "?", "**", "[ab]", "{a,b}", "\\"])


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.lists(GLOB_ALPHABET, min_size=1, max_size=6).map("".join), min_size=1, max_size=3),
    st.lists(st.sampled_from(["a", "b", "/", "."]), max_size=7).map("".join),
)
def test_compiled_globs_match_like_globmatch(patterns: list[str], value: str) -> None:
    """The engine's one-regex-per-set globs agree with the reference's `globmatch`."""
    compiled = compile_globs(patterns)
    assert compiled is not None
    assert (compiled.match(value) is not None) == reference.glob_any(value, patterns)


def _both(
    condition: dict[str, Any], work_item: WorkItem, applies: Applicability | None
) -> tuple[int, int]:
    rules = rule_set(pack("org", {"work_item": condition, "then": {"form": "github.pr_checklist"}}))
    lessons = [lesson("l1", applies=applies)]
    naive = reference.route(rules, lessons, work_item).placements
    placed = {len(engine(rules, lessons).route(work_item).placements) for engine in ENGINES}
    assert len(placed) == 1, f"engine builds disagree: {placed}"
    return placed.pop(), len(naive)


AWKWARD = [
    ("escaped-literal-project", {"projects": ["acme/a\\pi"]}, item(project="acme/api"), None, 1),
    ("escaped-path-head", {"paths": ["s\\rc/**"]}, item(paths=["src/a.py"]), None, 1),
    ("project-trailing-slash", {"projects": ["acme/api"]}, item(project="acme/api/"), None, 1),
    ("project-double-slash", {"projects": ["acme/api"]}, item(project="acme//api"), None, 1),
    ("pattern-double-slash", {"projects": ["acme//api"]}, item(project="acme/api"), None, 1),
    ("pattern-prefix-double-slash", {"projects": ["acme//a*"]}, item(project="acme/api"), None, 1),
    ("path-double-slash", {"paths": ["src/db/pool.py"]}, item(paths=["src//db/pool.py"]), None, 1),
    ("path-trailing-slash", {"paths": ["src/db"]}, item(paths=["src/db/"]), None, 1),
    ("pattern-dot-segment", {"paths": ["./src/**"]}, item(paths=["src/a.py"]), None, 0),
    ("path-dot-segment", {"paths": ["src/**"]}, item(paths=["./src/a.py"]), None, 0),
    ("path-absolute", {"paths": ["src/**"]}, item(paths=["/src/a.py"]), None, 0),
    ("globstar-skips-dot-dot", {"paths": ["src/**"]}, item(paths=["src/../a.py"]), None, 0),
    ("character-class", {"paths": ["src/[d]b/*"]}, item(paths=["src/db/a.py"]), None, 1),
    ("repos-escaped", {}, item(), applicability(repos=["acme/a\\pi"]), 1),
    ("repos-trailing-slash", {}, item(project="acme/api/"), applicability(repos=["acme/api"]), 1),
    ("repos-prefix", {}, item(project="acme//api"), applicability(repos=["acme/a*"]), 1),
    ("paths-escaped-head", {}, item(paths=["src/a"]), applicability(paths=["s\\rc/*"]), 1),
    ("paths-double-slash", {}, item(paths=["src//db/x"]), applicability(paths=["src/db/*"]), 1),
    ("services-trailing-slash", {}, item(project="acme/api/"), applicability(services=["api"]), 1),
    (
        "exclusion-repos-double-slash",
        {},
        item(project="acme//api"),
        applicability(exclusions={"repos": ["acme/api"]}),
        0,
    ),
]


@pytest.mark.parametrize(
    ("condition", "work_item", "applies", "expected"),
    [case[1:] for case in AWKWARD],
    ids=[case[0] for case in AWKWARD],
)
def test_awkward_spellings_agree_with_glob_semantics(
    condition: dict[str, Any], work_item: WorkItem, applies: Applicability | None, expected: int
) -> None:
    """Index keys (exact, prefix, leading segments) follow glob matching, escapes and slashes."""
    assert _both(condition, work_item, applies) == (expected, expected)
