"""The indexed routing engine: rules compiled once, each work item touches only likely rules.

Compiling files every rule under the work-item dimension that narrows it most (an exact or
prefix project, component, label, team, leading path segments, branch, type or system), resolves
each rule's lesson conditions to the lessons it selects, and sorts those lessons in placement
order. Routing a work item looks up the buckets its own values fall into, verifies only those
rules, then merges the matched rules' lesson lists lazily and stops as soon as the required
lessons and the fatigue budget are settled, so it examines a handful of lessons instead of every
candidate. The result is the same as `rules.reference.route`, which a property test checks.
"""

import heapq
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from core.lesson import Lesson, Mandate, Scope
from core.placement import EmbeddingForm
from core.work import WorkItem
from rules.decision import MANDATE_ORDER, Candidate, Decision, Routing, decide, stricter
from rules.globs import compile_globs, is_literal, leading_segments, literal_prefix, normalise
from rules.loader import RuleSet
from rules.model import Level, Rule
from rules.select import winner

Key = tuple[str, str]
Entry = tuple[int, int, int, str, int]
"""(mandate order, -priority, severity rank, lesson id, lesson number): placement order."""

_REQUIRED = MANDATE_ORDER[Mandate.REQUIRED]


class _View:
    """A work item's values as sets, computed once per routing call."""

    __slots__ = ("components", "item", "labels", "paths", "services", "system")

    def __init__(self, item: WorkItem) -> None:
        self.item = item
        self.system = item.system.value
        self.labels = frozenset(item.labels)
        self.components = frozenset(item.components)
        self.paths = item.changed_paths
        repo_name = normalise(item.project).rsplit("/", 1)[-1]
        self.services = self.components | self.labels | {repo_name}

    def keys(self, prefix_lengths: Collection[int]) -> set[Key]:
        item = self.item
        project = normalise(item.project)
        keys: set[Key] = {("project", project), ("type", item.type), ("system", self.system)}
        keys.update(("pprefix", project[:n]) for n in prefix_lengths if n <= len(project))
        keys.update(("component", c) for c in self.components)
        keys.update(("service", x) for x in self.services)
        keys.add(("any", ""))
        keys.update(("label", label) for label in self.labels)
        for path in self.paths:
            segments = normalise(path).split("/", 2)
            keys.add(("path1", segments[0]))
            if len(segments) > 1:
                keys.add(("path2", f"{segments[0]}/{segments[1]}"))
        if item.team is not None:
            keys.add(("team", item.team))
        if item.base_branch is not None:
            keys.add(("branch", item.base_branch))
        return keys


class _WorkMatcher:
    """One rule's work-item conditions, compiled."""

    __slots__ = (
        "branches",
        "components",
        "impossible",
        "labels",
        "pack_team",
        "paths",
        "projects",
        "system",
        "systems",
        "teams",
        "types",
    )

    def __init__(self, rule: Rule, pack_team: str | None) -> None:
        c = rule.work_item
        form = rule.then.form
        self.pack_team = pack_team
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
        # Set look-ups first; regular expressions only for rules still in the running.
        if (
            self.impossible
            or (self.pack_team is not None and item.team != self.pack_team)
            or (self.system is not None and self.system != view.system)
            or (self.systems is not None and view.system not in self.systems)
            or (self.labels is not None and self.labels.isdisjoint(view.labels))
            or (self.components is not None and self.components.isdisjoint(view.components))
            or (self.types is not None and item.type not in self.types)
            or (self.branches is not None and item.base_branch not in self.branches)
            or (self.teams is not None and item.team not in self.teams)
            or (self.projects is not None and not self.projects.match(item.project))
        ):
            return False
        paths = self.paths
        return paths is None or any(paths.match(p) for p in view.paths)


def _index_options(rule: Rule, pack_team: str | None) -> list[list[Key]]:
    """Every way to file a rule: each option is one dimension every matching item has a key in."""
    c = rule.work_item
    options: list[list[Key]] = [[("team", pack_team)]] if pack_team is not None else []
    if c.projects:
        if all(is_literal(p) for p in c.projects):
            options.append([("project", p) for p in c.projects])
        prefixes = [literal_prefix(p) for p in c.projects]
        if all(prefixes):
            options.append([("pprefix", p) for p in prefixes])
    for dimension, values in (
        ("component", c.components),
        ("label", c.labels),
        ("team", c.teams),
        ("branch", c.base_branches),
        ("type", c.types),
    ):
        if values:
            options.append([(dimension, v) for v in values])
    for count, dimension in ((2, "path2"), (1, "path1")):
        heads = [leading_segments(p, count) for p in c.paths]
        if heads and all(heads):
            options.append([(dimension, h) for h in heads if h is not None])
    systems = {s.value for s in c.systems}
    if rule.then.form is not None:
        systems = {rule.then.form.value.split(".", 1)[0]}
    if systems:
        options.append([("system", s) for s in sorted(systems)])
    return options


class _Scope:
    """A lesson's applicability (or exclusions), compiled."""

    __slots__ = ("components", "constrains", "empty", "paths", "repos", "services", "tags", "teams")

    def __init__(self, scope: Scope) -> None:
        self.services = frozenset(scope.services) or None
        self.components = frozenset(scope.components) or None
        self.repos = compile_globs(scope.repos)
        self.paths = compile_globs(scope.paths)
        self.teams = frozenset(scope.teams) or None
        self.tags = frozenset(scope.tags) or None
        constrains = scope.services or scope.components or scope.repos or scope.paths
        self.constrains = bool(constrains or scope.teams)
        self.empty = not (self.constrains or scope.tags)

    def requires(self, view: _View) -> bool:
        """Every given field (tags aside) holds for the work item."""
        item = view.item
        return not (
            (self.teams is not None and item.team not in self.teams)
            or (self.services is not None and self.services.isdisjoint(view.services))
            or (self.components is not None and self.components.isdisjoint(view.components))
            or (self.repos is not None and not self.repos.match(item.project))
            or (self.paths is not None and not any(self.paths.match(p) for p in view.paths))
        )

    def touches(self, view: _View) -> bool:
        """Any given field (tags included) holds for the work item."""
        item = view.item
        return (
            (self.services is not None and not self.services.isdisjoint(view.services))
            or (self.components is not None and not self.components.isdisjoint(view.components))
            or (self.repos is not None and self.repos.match(item.project) is not None)
            or (self.paths is not None and any(self.paths.match(p) for p in view.paths))
            or (self.teams is not None and item.team in self.teams)
            or (self.tags is not None and not self.tags.isdisjoint(view.labels))
        )


@dataclass(frozen=True, slots=True)
class _Compiled:
    candidate: Candidate
    matcher: _WorkMatcher
    members: frozenset[int]
    stream: tuple[Entry, ...]
    """Selected lessons in placement order (empty for suppressing rules)."""


def _lesson_selector(rule: Rule, lesson: Lesson) -> bool:
    c = rule.lesson
    a = lesson.applicability
    return (
        (not c.ids or lesson.id in c.ids)
        and (not c.tags or not set(c.tags).isdisjoint(a.tags))
        and (not c.services or not set(c.services).isdisjoint(a.services))
        and (not c.components or not set(c.components).isdisjoint(a.components))
        and (not c.forms or lesson.form in c.forms)
        and (not c.mandates or lesson.mandate in c.mandates)
        and (not c.owners or lesson.owner in c.owners)
        and (
            c.min_severity is None
            or (lesson.severity_rank is not None and lesson.severity_rank <= c.min_severity.rank)
        )
    )


class Engine:
    """A rule set compiled against the published lessons; immutable, so it can be swapped."""

    def __init__(self, rule_set: RuleSet, lessons: Sequence[Lesson]) -> None:
        self.rule_set = rule_set
        self.lessons = tuple(lessons)
        self.by_id = {lesson.id: lesson for lesson in self.lessons}
        self._number = {lesson.id: i for i, lesson in enumerate(self.lessons)}
        self._applies = [
            (_Scope(lesson.applicability), _Scope(lesson.applicability.exclusions))
            for lesson in self.lessons
        ]
        self._free = [not req.constrains and exc.empty for req, exc in self._applies]
        self._maybe_index = self._index_restricted()
        self._budgets = {
            team: rule_set.team_budget(team).max_items_per_work_item
            for team in {p.team for p in rule_set.packs}
        }
        self._default_budget = rule_set.organisation_budget.max_items_per_work_item
        lesson_index = self._index_lessons()
        self._rules: list[_Compiled] = []
        options: list[list[list[Key]]] = []
        order = 0
        for pack in rule_set.packs:
            for rule in pack.rules:
                team = pack.team if pack.level == Level.TEAM else None
                self._rules.append(self._compile(Candidate(rule, pack, order), lesson_index, team))
                options.append(_index_options(rule, team))
                order += 1
        self._index: dict[Key, list[int]] = defaultdict(list)
        self._wildcard: list[int] = []
        popularity = Counter(key for rule_options in options for o in rule_options for key in o)
        for number, rule_options in enumerate(options):
            if not rule_options:
                self._wildcard.append(number)
                continue
            best = min(rule_options, key=lambda o: sum(popularity[k] for k in o))
            for key in best:
                self._index[key].append(number)
        self._prefix_lengths = sorted(
            {len(k[1]) for k in (*self._index, *self._maybe_index) if k[0] == "pprefix"}
        )

    def _index_restricted(self) -> dict[Key, list[int]]:
        """File each lesson whose applicability constrains work items under one key every work
        item it applies to has, so routing can skip the others without evaluating them."""
        options: list[list[list[Key]]] = []
        for lesson in self.lessons:
            a = lesson.applicability
            found: list[list[Key]] = []
            if a.teams:
                found.append([("team", t) for t in a.teams])
            if a.components:
                found.append([("component", c) for c in a.components])
            if a.services:
                found.append([("service", x) for x in a.services])
            if a.repos:
                prefixes = [literal_prefix(r) for r in a.repos]
                if all(is_literal(r) for r in a.repos):
                    found.append([("project", r) for r in a.repos])
                elif all(prefixes):
                    found.append([("pprefix", p) for p in prefixes])
            for count, dimension in ((2, "path2"), (1, "path1")):
                heads = [leading_segments(p, count) for p in a.paths]
                if heads and all(heads):
                    found.append([(dimension, h) for h in heads if h is not None])
            options.append(found)
        popularity = Counter(k for found in options for o in found for k in o)
        index: dict[Key, list[int]] = defaultdict(list)
        for i, found in enumerate(options):
            if found:
                for key in min(found, key=lambda o: sum(popularity[k] for k in o)):
                    index[key].append(i)
            elif not self._free[i]:
                index[("any", "")].append(i)  # constrained, but by nothing indexable
        return index

    def _index_lessons(self) -> dict[Key, list[int]]:
        index: dict[Key, list[int]] = defaultdict(list)
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
                    index[(field, value)].append(i)
        return index

    def _compile(
        self, candidate: Candidate, index: dict[Key, list[int]], team: str | None
    ) -> _Compiled:
        rule = candidate.rule
        c = rule.lesson
        pools = [
            {i for v in values for i in index.get((field, str(v)), ())}
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
        pool = min(pools, key=len) if pools else range(len(self.lessons))
        members = frozenset(i for i in pool if _lesson_selector(rule, self.lessons[i]))
        stream: tuple[Entry, ...] = ()
        if not rule.then.suppress:
            stream = tuple(sorted(self._entry(i, candidate) for i in members))
        return _Compiled(candidate, _WorkMatcher(rule, team), members, stream)

    def _entry(self, i: int, candidate: Candidate) -> Entry:
        lesson = self.lessons[i]
        wanted = candidate.rule.then.mandate
        mandate = lesson.mandate if wanted is None else stricter(wanted, lesson.mandate)
        return (
            MANDATE_ORDER[mandate],
            -candidate.priority,
            lesson.severity_rank or 6,
            lesson.id,
            i,
        )

    @property
    def size(self) -> dict[str, int]:
        """Rules, lessons, index buckets and wildcard rules (for diagnostics)."""
        return {
            "rules": len(self._rules),
            "lessons": len(self.lessons),
            "buckets": len(self._index),
            "wildcard_rules": len(self._wildcard),
        }

    def rule_members(self, number: int) -> frozenset[int]:
        """Lesson numbers rule `number` selects (for diagnostics)."""
        return self._rules[number].members

    def biggest_buckets(self, count: int) -> list[tuple[Key, int]]:
        """The most crowded index buckets (for diagnostics)."""
        sizes = sorted(((k, len(v)) for k, v in self._index.items()), key=lambda kv: -kv[1])
        return sizes[:count]

    def matched_rules(self, item: WorkItem) -> tuple[int, list[int]]:
        """How many rules the index proposed for `item`, and the numbers of those that match."""
        view = _View(item)
        return self._matched(view, view.keys(self._prefix_lengths))

    def _matched(self, view: _View, keys: set[Key]) -> tuple[int, list[int]]:
        seen: set[int] = set(self._wildcard)
        index = self._index
        for key in keys:
            bucket = index.get(key)
            if bucket:
                seen.update(bucket)
        rules = self._rules
        matched = [n for n in seen if rules[n].matcher.matches(view)]
        matched.sort()
        return len(seen), matched

    def route(self, item: WorkItem, *, already_placed: Collection[str] = ()) -> Routing:
        """Decide which lessons to place in `item`."""
        view = _View(item)
        keys = view.keys(self._prefix_lengths)
        _, matched = self._matched(view, keys)
        rules, lessons, free, applies_to = self._rules, self.lessons, self._free, self._applies
        maybe: set[int] = set()
        for key in keys:
            bucket = self._maybe_index.get(key)
            if bucket:
                maybe.update(bucket)
        active = [
            (rules[n].members, rules[n].candidate, rules[n].candidate.rule.override_applicability)
            for n in matched
        ]
        any_override = any(override for _, _, override in active)
        placed_before = {self._number[x] for x in already_placed if x in self._number}
        room = self._budgets.get(item.team, self._default_budget) - len(already_placed)
        heap: list[tuple[Entry, int, int]] = [
            (rules[n].stream[0], n, 0) for n in matched if rules[n].stream
        ]
        heapq.heapify(heap)
        resolved: set[int] = set()  # lessons whose true entry is known (queued or settled)
        chosen: list[tuple[Entry, Candidate]] = []
        push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace
        while heap:
            entry, n, position = heap[0]
            if entry[0] != _REQUIRED and room <= 0:
                break  # everything left is advisory and the budget is spent
            stream = rules[n].stream
            if 0 <= position < len(stream) - 1:
                replace(heap, (stream[position + 1], n, position + 1))
            else:
                pop(heap)
            i = entry[4]
            if position < 0:  # a lesson's true entry: its turn has come
                chosen.append((entry, rules[n].candidate))
                room -= 1
                continue
            if i in resolved:
                continue
            resolved.add(i)
            if i in placed_before:
                continue
            if free[i]:
                found = [c for members, c, _ in active if i in members]
            elif i not in maybe and not any_override:
                continue  # its applicability cannot hold here, and no rule overrides it
            else:
                required, excluded = applies_to[i]
                ok = required.requires(view) and not excluded.touches(view)
                found = [c for members, c, override in active if i in members and (ok or override)]
            decider: Candidate | None = found[0] if len(found) == 1 else None
            if decider is None or decider.rule.then.suppress:
                decider, _ = winner(lessons[i], found)
                if decider is None:
                    continue
            true = self._entry(i, decider)
            # The first entry popped for a lesson is its smallest, so its true entry is never
            # earlier; queue it and let the merge decide when it is due.
            push(heap, (true, decider.order, -1))
        version = self.rule_set.version
        return Routing(tuple(self._decide(e, c, version) for e, c in chosen))

    def _decide(self, entry: Entry, candidate: Candidate, version: str) -> Decision:
        return decide(self.lessons[entry[4]], candidate, version)
