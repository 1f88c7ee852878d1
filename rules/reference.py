"""The naive evaluator: every rule against every lesson, one condition at a time, with reasons.

It is the specification the indexed engine is property-tested against, the linear-scan baseline
of the benchmark, and what `cairn rules test` uses to explain each lesson's fate.
"""

from collections.abc import Collection, Iterable, Sequence

from wcmatch.glob import BRACE, DOTGLOB, GLOBSTAR, globmatch

from core.lesson import Lesson, Scope
from core.placement import EmbeddingForm
from core.work import WorkItem
from rules.decision import Candidate, Routing, Skipped
from rules.globs import normalise
from rules.loader import RuleSet
from rules.model import LessonCondition, Level, Pack, Rule, WorkItemCondition
from rules.select import select

_FLAGS = GLOBSTAR | DOTGLOB | BRACE


def glob_any(value: str, patterns: Sequence[str]) -> bool:
    """Whether `value` matches any of the globs, as every rule condition matches them."""
    return any(globmatch(value, p, flags=_FLAGS) for p in patterns)


def _show(values: Iterable[object]) -> list[str]:
    return [str(getattr(v, "value", v)) for v in values]


def _any(values: Iterable[str], allowed: Collection[str]) -> bool:
    return any(v in allowed for v in values)


def team_failure(pack: Pack, item: WorkItem) -> str | None:
    """A team pack speaks for its own team's work items only."""
    if pack.level == Level.TEAM and item.team != pack.team:
        return f"team pack {pack.pack} applies to team {pack.team!r}, not {item.team!r}"
    return None


def work_item_failure(rule: Rule, item: WorkItem) -> str | None:
    """The first work-item condition of `rule` that `item` fails, or None."""
    form = rule.then.form
    if form is not None:
        if item.system.value not in rule.form_systems():
            return f"form {form.value} does not fit a {item.system.value} work item"
        if form == EmbeddingForm.GITHUB_PR_TEMPLATE:
            return "form github.pr_template is placed per repository, not per pull request"
    c: WorkItemCondition = rule.work_item
    checks = (
        ("systems", not c.systems or item.system in c.systems, item.system.value),
        ("projects", not c.projects or glob_any(item.project, c.projects), item.project),
        (
            "paths",
            not c.paths or any(glob_any(path, c.paths) for path in item.changed_paths),
            list(item.changed_paths),
        ),
        ("labels", not c.labels or _any(item.labels, c.labels), list(item.labels)),
        (
            "components",
            not c.components or _any(item.components, c.components),
            list(item.components),
        ),
        ("types", not c.types or item.type in c.types, item.type),
        (
            "base_branches",
            not c.base_branches or item.base_branch in c.base_branches,
            item.base_branch,
        ),
        ("teams", not c.teams or item.team in c.teams, item.team),
    )
    for name, ok, actual in checks:
        if not ok:
            return f"work_item.{name}: {actual!r} matches none of {_show(getattr(c, name))}"
    return None


def lesson_failure(rule: Rule, lesson: Lesson) -> str | None:
    """The first lesson condition of `rule` that `lesson` fails, or None."""
    c: LessonCondition = rule.lesson
    a = lesson.applicability
    checks = (
        ("ids", not c.ids or lesson.id in c.ids, lesson.id),
        ("tags", not c.tags or _any(a.tags, c.tags), list(a.tags)),
        ("services", not c.services or _any(a.services, c.services), list(a.services)),
        ("components", not c.components or _any(a.components, c.components), list(a.components)),
        ("forms", not c.forms or lesson.form in c.forms, lesson.form.value),
        ("mandates", not c.mandates or lesson.mandate in c.mandates, lesson.mandate.value),
        ("owners", not c.owners or lesson.owner in c.owners, lesson.owner),
    )
    for name, ok, actual in checks:
        if not ok:
            return f"lesson.{name}: {actual!r} matches none of {_show(getattr(c, name))}"
    if c.min_severity is not None and (
        lesson.severity_rank is None or lesson.severity_rank > c.min_severity.rank
    ):
        return f"lesson severity rank {lesson.severity_rank} is below {c.min_severity.value}"
    return None


def _scope_hits(scope: Scope, item: WorkItem) -> list[str]:
    """Which fields of `scope` the work item falls into (services match components, labels or
    the repository's name)."""
    service_names = {*item.components, *item.labels, normalise(item.project).rsplit("/", 1)[-1]}
    hits = []
    if scope.services and _any(scope.services, service_names):
        hits.append("services")
    if scope.components and _any(item.components, scope.components):
        hits.append("components")
    if scope.repos and glob_any(item.project, scope.repos):
        hits.append("repos")
    if scope.paths and any(glob_any(path, scope.paths) for path in item.changed_paths):
        hits.append("paths")
    if scope.teams and item.team in scope.teams:
        hits.append("teams")
    if scope.tags and _any(item.labels, scope.tags):
        hits.append("tags")
    return hits


def applicability_failure(lesson: Lesson, item: WorkItem) -> str | None:
    """Why the lesson's author says it does not transfer to `item`, or None.

    Every non-empty field of the applicability must match (tags describe the lesson and do
    not constrain); any matching exclusion field rules the work item out.
    """
    a = lesson.applicability
    hits = set(_scope_hits(a, item))
    for name in ("services", "components", "repos", "paths", "teams"):
        if getattr(a, name) and name not in hits:
            return f"applicability.{name}: work item is outside {list(getattr(a, name))}"
    excluded = _scope_hits(a.exclusions, item)
    if excluded:
        return f"applicability.exclusions.{excluded[0]} matches the work item"
    return None


def route(
    rule_set: RuleSet,
    lessons: Sequence[Lesson],
    item: WorkItem,
    *,
    already_placed: Collection[str] = (),
    explain: bool = False,
) -> Routing:
    """Route one work item by checking every rule against every lesson."""
    by_id = {lesson.id: lesson for lesson in lessons}
    candidates: dict[str, list[Candidate]] = {}
    failures: dict[str, tuple[int, str]] = {}
    order = 0
    for pack in rule_set.packs:
        for rule in pack.rules:
            candidate = Candidate(rule, pack, order)
            order += 1
            item_failure = team_failure(pack, item) or work_item_failure(rule, item)
            for lesson in lessons:
                stage, reason = 0, item_failure
                if reason is None:
                    stage, reason = 1, lesson_failure(rule, lesson)
                if reason is None and not rule.override_applicability:
                    stage, reason = 2, applicability_failure(lesson, item)
                if reason is None:
                    candidates.setdefault(lesson.id, []).append(candidate)
                elif explain and stage > failures.get(lesson.id, (-1, ""))[0]:
                    # Report the rule that got furthest: the most telling reason.
                    failures[lesson.id] = (stage, f"{candidate.rule_id}: {reason}")
    routing = select(
        by_id,
        candidates,
        rule_set_version=rule_set.version,
        already_placed=already_placed,
        budget=rule_set.team_budget(item.team).max_items_per_work_item,
        explain=explain,
    )
    if not explain:
        return routing
    unselected = tuple(
        Skipped(lesson.id, failures[lesson.id][1] if lesson.id in failures else "no rules")
        for lesson in lessons
        if lesson.id not in candidates
    )
    return Routing(routing.placements, routing.skipped + unselected)
