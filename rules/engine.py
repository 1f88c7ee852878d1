"""The indexed routing engine: rules compiled once, each work item touches only likely rules.

Compiling indexes every rule under one work-item dimension it requires (an exact project,
component, label, team, first path segment, branch, type or system) and resolves each rule's
lesson conditions to the list of lessons it selects. Routing a work item then looks up the
buckets its own values fall into, verifies those rules only, and checks the lessons' own
applicability once per lesson. The result is the same as `rules.reference.route`, which a
property test checks.
"""

import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from core.lesson import Lesson, Scope
from core.placement import EmbeddingForm
from core.work import WorkItem
from rules.decision import Candidate, Routing
from rules.globs import compile_globs, is_literal
from rules.loader import RuleSet
from rules.model import Rule
from rules.reference import lesson_failure
from rules.select import select

Key = tuple[str, str]


def _matches(pattern: re.Pattern[str] | None, value: str) -> bool:
    return pattern is not None and pattern.match(value) is not None


class _View:
    """A work item's values as sets, computed once per routing call."""

    __slots__ = ("components", "item", "keys", "labels", "paths", "services", "system")

    def __init__(self, item: WorkItem) -> None:
        self.item = item
        self.system = item.system.value
        self.labels = frozenset(item.labels)
        self.components = frozenset(item.components)
        self.paths = item.changed_paths
        self.services = self.components | self.labels | {item.project.rsplit("/", 1)[-1]}
        keys: set[Key] = {("project", item.project), ("type", item.type), ("system", self.system)}
        keys.update(("component", c) for c in self.components)
        keys.update(("label", label) for label in self.labels)
        keys.update(("path0", path.split("/", 1)[0]) for path in self.paths)
        if item.team is not None:
            keys.add(("team", item.team))
        if item.base_branch is not None:
            keys.add(("branch", item.base_branch))
        self.keys = keys


class _WorkMatcher:
    """One rule's work-item conditions, compiled."""

    __slots__ = (
        "branches",
        "components",
        "impossible",
        "labels",
        "paths",
        "projects",
        "system",
        "systems",
        "teams",
        "types",
    )

    def __init__(self, rule: Rule) -> None:
        c = rule.work_item
        form = rule.then.form
        self.system = None if form is None else form.value.split(".", 1)[0]
        self.impossible = form == EmbeddingForm.GITHUB_PR_TEMPLATE
        self.systems = frozenset(s.value for s in c.systems) or None
        self.projects = compile_globs(c.projects)
        self.paths = compile_globs(c.paths)
        self.labels = frozenset(c.labels) or None
        self.components = frozenset(c.components) or None
        self.types = frozenset(c.types) or None
        self.branches = frozenset(c.base_branches) or None
        self.teams = frozenset(c.teams) or None

    def matches(self, view: _View) -> bool:
        item = view.item
        paths = self.paths
        return not (
            self.impossible
            or (self.system is not None and self.system != view.system)
            or (self.systems is not None and view.system not in self.systems)
            or (self.projects is not None and not self.projects.match(item.project))
            or (paths is not None and not any(paths.match(p) for p in view.paths))
            or (self.labels is not None and self.labels.isdisjoint(view.labels))
            or (self.components is not None and self.components.isdisjoint(view.components))
            or (self.types is not None and item.type not in self.types)
            or (self.branches is not None and item.base_branch not in self.branches)
            or (self.teams is not None and item.team not in self.teams)
        )


def _index_keys(rule: Rule) -> list[Key]:
    """The bucket(s) a rule is filed under: one dimension every matching work item has."""
    c = rule.work_item
    if c.projects and all(is_literal(p) for p in c.projects):
        return [("project", p) for p in c.projects]
    for dimension, values in (("component", c.components), ("label", c.labels), ("team", c.teams)):
        if values:
            return [(dimension, v) for v in values]
    heads = [p.split("/", 1)[0] for p in c.paths]
    if heads and all(head and is_literal(head) for head in heads):
        return [("path0", head) for head in heads]
    for dimension, values in (("branch", c.base_branches), ("type", c.types)):
        if values:
            return [(dimension, v) for v in values]
    if rule.then.form is not None:
        return [("system", rule.then.form.value.split(".", 1)[0])]
    return [("system", s.value) for s in c.systems]  # empty: the rule goes to the wildcard list


class _Scope:
    """A lesson's applicability (or exclusions), compiled."""

    __slots__ = ("components", "paths", "repos", "services", "tags", "teams")

    def __init__(self, scope: Scope) -> None:
        self.services = frozenset(scope.services) or None
        self.components = frozenset(scope.components) or None
        self.repos = compile_globs(scope.repos)
        self.paths = compile_globs(scope.paths)
        self.teams = frozenset(scope.teams) or None
        self.tags = frozenset(scope.tags) or None

    def requires(self, view: _View) -> bool:
        """Every given field (tags aside) holds for the work item."""
        item = view.item
        return not (
            (self.services is not None and self.services.isdisjoint(view.services))
            or (self.components is not None and self.components.isdisjoint(view.components))
            or (self.repos is not None and not self.repos.match(item.project))
            or (self.paths is not None and not any(self.paths.match(p) for p in view.paths))
            or (self.teams is not None and item.team not in self.teams)
        )

    def touches(self, view: _View) -> bool:
        """Any given field (tags included) holds for the work item."""
        item = view.item
        return (
            (self.services is not None and not self.services.isdisjoint(view.services))
            or (self.components is not None and not self.components.isdisjoint(view.components))
            or _matches(self.repos, item.project)
            or (self.paths is not None and any(self.paths.match(p) for p in view.paths))
            or (self.teams is not None and item.team in self.teams)
            or (self.tags is not None and not self.tags.isdisjoint(view.labels))
        )


@dataclass(frozen=True, slots=True)
class _Compiled:
    candidate: Candidate
    matcher: _WorkMatcher
    lessons: tuple[int, ...]


class Engine:
    """A rule set compiled against the published lessons; immutable, so it can be swapped."""

    def __init__(self, rule_set: RuleSet, lessons: Sequence[Lesson]) -> None:
        self.rule_set = rule_set
        self.lessons = tuple(lessons)
        self.by_id = {lesson.id: lesson for lesson in self.lessons}
        self._applies = [
            (_Scope(lesson.applicability), _Scope(lesson.applicability.exclusions))
            for lesson in self.lessons
        ]
        lesson_index: dict[Key, list[int]] = defaultdict(list)
        for i, lesson in enumerate(self.lessons):
            a = lesson.applicability
            for field, values in (
                ("id", (lesson.id,)),
                ("tag", a.tags),
                ("service", a.services),
                ("component", a.components),
                ("owner", (lesson.owner,)),
                ("form", (lesson.form.value,)),
                ("mandate", (lesson.mandate.value,)),
            ):
                for value in set(values):
                    lesson_index[(field, value)].append(i)
        self._rules: list[_Compiled] = []
        self._index: dict[Key, list[int]] = defaultdict(list)
        self._wildcard: list[int] = []
        order = 0
        for pack in rule_set.packs:
            for rule in pack.rules:
                selected = self._select_lessons(rule, lesson_index)
                number = len(self._rules)
                self._rules.append(
                    _Compiled(Candidate(rule, pack, order), _WorkMatcher(rule), selected)
                )
                order += 1
                keys = _index_keys(rule)
                for key in keys:
                    self._index[key].append(number)
                if not keys:
                    self._wildcard.append(number)

    def _select_lessons(self, rule: Rule, index: dict[Key, list[int]]) -> tuple[int, ...]:
        c = rule.lesson
        options = [
            sorted({i for v in values for i in index.get((field, str(v)), ())})
            for field, values in (
                ("id", c.ids),
                ("tag", c.tags),
                ("service", c.services),
                ("component", c.components),
                ("owner", c.owners),
                ("form", tuple(f.value for f in c.forms)),
                ("mandate", tuple(m.value for m in c.mandates)),
            )
            if values
        ]
        pool = min(options, key=len) if options else range(len(self.lessons))
        return tuple(i for i in pool if lesson_failure(rule, self.lessons[i]) is None)

    @property
    def size(self) -> dict[str, int]:
        """Rules, lessons, index buckets and wildcard rules (for diagnostics)."""
        return {
            "rules": len(self._rules),
            "lessons": len(self.lessons),
            "buckets": len(self._index),
            "wildcard_rules": len(self._wildcard),
        }

    def route(self, item: WorkItem, *, already_placed: Collection[str] = ()) -> Routing:
        """Decide which lessons to place in `item`."""
        view = _View(item)
        seen: set[int] = set()
        index = self._index
        for key in view.keys:
            bucket = index.get(key)
            if bucket:
                seen.update(bucket)
        seen.update(self._wildcard)
        candidates: dict[str, list[Candidate]] = {}
        applies: dict[int, bool] = {}
        for number in sorted(seen):
            compiled = self._rules[number]
            if not compiled.matcher.matches(view):
                continue
            override = compiled.candidate.rule.override_applicability
            for i in compiled.lessons:
                if not override:
                    ok = applies.get(i)
                    if ok is None:
                        required, excluded = self._applies[i]
                        ok = applies[i] = required.requires(view) and not excluded.touches(view)
                    if not ok:
                        continue
                candidates.setdefault(self.lessons[i].id, []).append(compiled.candidate)
        return select(
            self.by_id,
            candidates,
            rule_set_version=self.rule_set.version,
            already_placed=already_placed,
            budget=self.rule_set.team_budget(item.team).max_items_per_work_item,
        )
