"""The indexed routing engine: rules compiled once, each work item touches only likely rules.

Compiling files every rule under the work-item dimension that narrows it most (an exact or
prefix project, component, label, team, leading path segments, branch, type or system), resolves
each rule's lesson conditions to the lessons it selects, and sorts those lessons in placement
order, each encoded as one integer. Lessons whose applicability constrains work items are kept
apart, under the key every work item they apply to has. Routing a work item turns its values into
a set of keys, verifies only the rules its keys propose (conditions become set look-ups on those
keys wherever glob semantics allow), then reads the matched rules' lesson lists in order and stops
as soon as the required lessons and the fatigue budget are settled, so it examines a handful of
lessons instead of every candidate. The result is the same as `rules.reference.route`, which a
property test checks.
"""

import heapq
import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence

from core.lesson import Lesson, Scope
from core.placement import EmbeddingForm
from core.work import System, WorkItem
from rules.decision import MANDATE_ORDER, Candidate, Decision, Routing, decide
from rules.globs import compile_globs, is_literal, leading_segments, literal_prefix, normalise
from rules.loader import RuleSet
from rules.model import Level, Rule
from rules.select import winner

Key = tuple[str, str]
Keys = frozenset[Key]

_ANY: Key = ("any", "")
_NEVER: Key = ("never", "")
"""A key no work item has."""
_NO_MANDATE = len(MANDATE_ORDER)
"""Sorts after every mandate order: a rule that does not raise the lesson's mandate."""
_MEMO_SIZE = 4096
"""Verdicts a glob remembers before starting afresh (enough for every project of a large org)."""
_SYNTAX = "[{\\"
"""Glob syntax that can make one pattern segment span several path segments or none."""


class _Glob:
    """A set of glob patterns as one regex that remembers its recent verdicts.

    Work items of one project arrive again and again, so a project glob is evaluated once per
    project rather than once per work item. The memo is bounded and only ever holds verdicts the
    regex gives, so sharing it between threads is safe.
    """

    __slots__ = ("memo", "regex")

    def __init__(self, regex: re.Pattern[str]) -> None:
        self.regex = regex
        self.memo: dict[str, bool] = {}

    def match(self, value: str) -> bool:
        """True when any pattern matches `value`."""
        verdict = self.memo.get(value)
        if verdict is None:
            verdict = self.regex.match(value) is not None
            if len(self.memo) >= _MEMO_SIZE:
                self.memo.clear()
            self.memo[value] = verdict
        return verdict


def _exact_path_key(pattern: str) -> Key | None:
    """The key a clean path has exactly when it matches `pattern`, for `a/**`, `a/b/**` and
    `**/a/**` with literal segments; None for any other pattern."""
    if pattern.startswith("**/") and pattern.endswith("/**"):
        middle = pattern[3:-3]
        if "/" not in middle and is_literal(middle):
            return ("seg", middle)
    elif pattern.endswith("/**"):
        head = pattern[:-3]
        if head.count("/") <= 1 and is_literal(head):
            return ("dir", head)
    return None


def _necessary_segment(pattern: str) -> str | None:
    """A literal segment every path matching `pattern` has before its last segment, if any."""
    if any(ch in pattern for ch in _SYNTAX):
        return None  # braces, classes and escapes can reshape segments
    for segment in reversed(pattern.split("/")[:-1]):
        if segment not in ("", ".", "..") and is_literal(segment):
            return segment
    return None


class _View:
    """A work item with its keys, computed once per routing call."""

    __slots__ = ("all_keys", "clean", "item", "own", "paths", "project", "shared")

    def __init__(self, item: WorkItem, own: set[Key], shared: Keys, clean: bool) -> None:
        self.item = item
        self.project = item.project
        self.paths = item.changed_paths
        self.own = own
        """Keys of the labels, components and paths (none of them a context key)."""
        self.shared = shared
        """Keys of the context."""
        self.all_keys: set[Key] | None = None
        self.clean = clean
        """Every changed path is clean (see `_OwnKeys`)."""

    @property
    def keys(self) -> set[Key]:
        """Every key of the work item (worked out when first needed)."""
        if self.all_keys is None:
            self.all_keys = self.own | self.shared
        return self.all_keys


def _context_keys(item: WorkItem, prefix_lengths: Sequence[int], branch: str | None) -> Keys:
    """The keys of a work item's context: project, type, system, team and base branch (None
    when no rule names it)."""
    keys = set(_project_keys(item.project, prefix_lengths))
    keys.add(("type", item.type))
    keys.add(("system", item.system.value))
    if item.team is not None:
        keys.add(("team", item.team))
    if branch is not None:
        keys.add(("branch", branch))
    return frozenset(keys)


def _service_key(project: str) -> Key:
    """The service a project stands for: its repository name."""
    return ("service", normalise(project).rsplit("/", 1)[-1])


def _project_keys(project: str, prefix_lengths: Sequence[int]) -> Keys:
    """The keys a work item has for its project: the project, its literal prefixes, and the
    repository name as a service."""
    project = normalise(project)
    keys = {("project", project), _service_key(project), _ANY}
    keys.update([("pprefix", project[:n]) for n in prefix_lengths if n <= len(project)])
    return frozenset(keys)


class _OwnKeys:
    """The keys of what varies between work items of one context (labels, components, changed
    paths), keeping only `relevant` keys: those some condition looks at. Labels, components and
    folders are a small vocabulary that work items keep coming back to, so their keys are kept.
    """

    __slots__ = ("components", "folders", "labels", "relevant", "shallow")

    def __init__(self, relevant: Keys) -> None:
        self.relevant = relevant
        self.labels: dict[str, Keys] = {}
        self.components: dict[str, Keys] = {}
        self.folders: dict[str, Keys] = {}
        self.shallow = frozenset(v for d, v in relevant if d == "path1" or d == "path2")
        """Paths whose leading segments some condition looks at, were they the whole path."""

    def __call__(self, item: WorkItem) -> tuple[set[Key], bool]:
        """The work item's keys, and whether every changed path is clean (no empty, `.` or `..`
        segment): only then do `dir` keys and folder-level keys stand for its paths."""
        keys: set[Key] = set()
        memo = self.labels
        for value in item.labels:
            found = memo.get(value)
            if found is None:
                found = _remember(memo, value, _value_keys("label", value) & self.relevant)
            if found:
                keys.update(found)
        memo = self.components
        for value in item.components:
            found = memo.get(value)
            if found is None:
                found = _remember(memo, value, _value_keys("component", value) & self.relevant)
            if found:
                keys.update(found)
        paths = item.changed_paths
        if not paths:
            return keys, True
        # Clean paths in the same folder share their keys (a folder's cleanliness is kept with
        # them) but for paths of one or two segments, whose leading segments are the path itself.
        memo = self.folders
        folder_keys: set[Key] = set()
        seen: set[str] = set()
        for path in paths:
            folder, slash, name = path.rpartition("/")
            if name == "" or name == "." or name == ".." or (slash and not folder):
                return self._unclean(keys, paths)
            if folder and folder not in seen:
                seen.add(folder)
                found = memo.get(folder)
                if found is None:
                    found = _remember(memo, folder, self._folder(folder))
                if found is _UNCLEAN:
                    return self._unclean(keys, paths)
                folder_keys.update(found)
        keys.update(folder_keys)
        for path in self.shallow.intersection(paths):
            keys.add(("path2", path) if "/" in path else ("path1", path))
        return keys, True

    def _folder(self, folder: str) -> Keys:
        """The relevant keys of a clean path in `folder`; `_UNCLEAN` when the folder has an
        empty, `.` or `..` segment."""
        if "" in (segments := folder.split("/")) or "." in segments or ".." in segments:
            return _UNCLEAN
        return _folder_keys(segments) & self.relevant

    def _unclean(self, keys: set[Key], paths: Sequence[str]) -> tuple[set[Key], bool]:
        keys.update(_unclean_path_keys(paths) & self.relevant)
        return keys, False


def _value_keys(dimension: str, value: str) -> Keys:
    """The keys of a label or component: itself, and the service of the same name."""
    return frozenset([(dimension, value), ("service", value)])


def _remember(memo: dict[str, Keys], value: str, keys: Keys) -> Keys:
    """Keep `keys` for `value` in a bounded memo, and return them."""
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[value] = keys
    return keys


def _unclean_path_keys(paths: Sequence[str]) -> set[Key]:
    """Leading segments of the normalised paths (index keys) and the segments before each
    path's last (`seg`), for paths that are not all clean."""
    keys: set[Key] = set()
    for path in map(normalise, paths):
        head, slash, rest = path.partition("/")
        keys.add(("path1", head))
        if slash:
            keys.add(("path2", f"{head}/{rest.partition('/')[0]}"))
    for folder in {path.rpartition("/")[0] for path in paths} - {""}:
        keys.update([("seg", s) for s in folder.split("/")])
    return keys


_UNCLEAN: Keys = frozenset([("unclean", "")])
"""Kept for a folder with an empty, `.` or `..` segment (compared by identity)."""


def _folder_keys(segments: Sequence[str]) -> Keys:
    """The keys of a clean path in the folder of `segments`."""
    keys = {("seg", s) for s in segments}
    keys.update([("path1", segments[0]), ("dir", segments[0])])
    if len(segments) > 1:
        two = f"{segments[0]}/{segments[1]}"
        keys.update([("path2", two), ("dir", two)])
    return frozenset(keys)


GlobFor = Callable[[Iterable[str]], _Glob | None]


class _Paths:
    """A set of path patterns: key look-ups where they decide, a regex for the rest."""

    __slots__ = ("exact", "full", "full_need", "rest", "rest_need")

    def __init__(self, patterns: Sequence[str], glob_for: GlobFor) -> None:
        keys = [_exact_path_key(p) for p in patterns]
        rest = [p for p, key in zip(patterns, keys, strict=True) if key is None]
        self.exact: Keys | None = frozenset(k for k in keys if k is not None) or None
        self.rest = glob_for(rest)
        self.full = glob_for(patterns)
        self.rest_need = _need(rest)
        self.full_need = _need(patterns)

    @property
    def keys(self) -> Keys:
        """Every key `match` looks at."""
        return (self.exact or _EMPTY) | (self.rest_need or _EMPTY) | (self.full_need or _EMPTY)

    def match(self, view: _View) -> bool:
        """True when any of the work item's changed paths matches any pattern."""
        keys = view.own  # path keys are never context keys
        if view.clean:
            if self.exact is not None and not self.exact.isdisjoint(keys):
                return True
            glob, need = self.rest, self.rest_need
        else:
            glob, need = self.full, self.full_need
        if glob is None or (need is not None and need.isdisjoint(keys)):
            return False
        return any(map(glob.match, view.paths))  # pull requests keep touching the same files


def _only_keys(paths: _Paths | None) -> Keys | None:
    """The keys that decide `paths` on clean paths when every pattern is a key look-up."""
    return paths.exact if paths is not None and paths.rest is None else None


def _need(patterns: Sequence[str]) -> Keys | None:
    """Segment keys of which a work item has one whenever a path matches one of `patterns`
    (None when some pattern requires no particular segment)."""
    segments = [_necessary_segment(p) for p in patterns]
    if not segments or None in segments:
        return None
    return frozenset(("seg", s) for s in segments if s is not None)


_EMPTY: Keys = frozenset()


def _keys(dimension: str, values: Iterable[str]) -> Keys:
    return frozenset((dimension, v) for v in values) or _EMPTY


def _split(needs: Iterable[Keys]) -> tuple[Keys, tuple[Keys, ...]]:
    """Key sets a work item must meet, as one set of keys it must all have (the sets of one key)
    and the sets it must have some key of (the others): fewer set operations per check."""
    given = [n for n in needs if n]
    single = frozenset(k for n in given if len(n) == 1 for k in n) or _EMPTY
    return single, tuple(n for n in given if len(n) > 1)


class _WorkMatcher:
    """One rule's work-item conditions, compiled: keys to have, key sets to meet, then globs."""

    __slots__ = ("alternatives", "paths", "projects", "required")

    def __init__(self, rule: Rule, pack_team: str | None, glob_for: GlobFor) -> None:
        c = rule.work_item
        form = rule.then.form
        needs = [
            _keys("team", [] if pack_team is None else [pack_team]),
            _keys("system", sorted(rule.form_systems())),
            _keys("system", (s.value for s in c.systems)),
            _keys("label", c.labels),
            _keys("component", c.components),
            _keys("type", c.types),
            _keys("branch", c.base_branches),
            _keys("team", c.teams),
        ]
        if form == EmbeddingForm.GITHUB_PR_TEMPLATE:
            needs.append(frozenset([_NEVER]))  # placed per repository, never per work item
        self.projects: _Glob | None = None
        if c.projects and all(is_literal(p) for p in c.projects):
            needs.append(_keys("project", c.projects))  # a literal matches its normal form only
        else:
            self.projects = glob_for(c.projects)
        self.required, self.alternatives = _split(needs)
        self.paths = _Paths(c.paths, glob_for) if c.paths else None


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
    options.extend(_path_options(c.paths))
    systems = {s.value for s in c.systems}
    if rule.then.form is not None:
        systems = set(rule.form_systems())
    if systems:
        options.append([("system", s) for s in sorted(systems)])
    return options


def _path_options(patterns: Sequence[str]) -> list[list[Key]]:
    """Ways to file a path condition: leading segments, or a segment every match has."""
    options: list[list[Key]] = []
    for count, dimension in ((2, "path2"), (1, "path1")):
        heads = [leading_segments(p, count) for p in patterns]
        if heads and all(heads):
            options.append([(dimension, h) for h in heads if h is not None])
    need = _need(patterns)
    if need is not None:
        options.append(sorted(need))
    return options


class _Scope:
    """A lesson's applicability (or exclusions), compiled."""

    __slots__ = ("alternatives", "any_of", "constrains", "empty", "paths", "repos", "required")

    def __init__(self, scope: Scope, glob_for: GlobFor) -> None:
        repos: Keys = frozenset()
        self.repos: _Glob | None = None
        if scope.repos and all(is_literal(r) for r in scope.repos):
            repos = _keys("project", scope.repos)
        else:
            self.repos = glob_for(scope.repos)
        needs = (
            _keys("team", scope.teams),
            _keys("service", scope.services),
            _keys("component", scope.components),
            repos,
        )
        self.required, self.alternatives = _split(needs)
        self.any_of = frozenset().union(*needs, _keys("label", scope.tags))
        self.paths = _Paths(scope.paths, glob_for) if scope.paths else None
        constrains = scope.services or scope.components or scope.repos or scope.paths
        self.constrains = bool(constrains or scope.teams)
        self.empty = not (self.constrains or scope.tags)

    def requires(self, view: _View) -> bool:
        """Every given field (tags aside) holds for the work item."""
        keys = view.keys
        if not self.required <= keys:
            return False
        for need in self.alternatives:
            if need.isdisjoint(keys):
                return False
        if self.repos is not None and not self.repos.match(view.project):
            return False
        return self.paths is None or self.paths.match(view)

    def touches(self, view: _View) -> bool:
        """Any given field (tags included) holds for the work item."""
        return (
            not self.any_of.isdisjoint(view.keys)
            or (self.repos is not None and self.repos.match(view.project))
            or (self.paths is not None and self.paths.match(view))
        )


def _systems(rule: Rule) -> set[str]:
    """The systems whose work items the rule can match."""
    if rule.then.form is not None:
        return set(rule.form_systems())
    return {s.value for s in rule.work_item.systems} or {s.value for s in System}


def _for_system(
    system: str,
    index: dict[Key, list[int]],
    wildcard: list[int],
    candidates: Sequence[tuple[Candidate, str | None]],
) -> tuple[dict[Key, list[int]], list[int]]:
    """The part of the rule index that can match a work item of `system`."""
    fits = [system in _systems(c.rule) for c, _ in candidates]
    buckets = {key: [n for n in rules if fits[n]] for key, rules in index.items()}
    return {k: v for k, v in buckets.items() if v}, [n for n in wildcard if fits[n]]


Check = tuple[Keys, tuple[Keys, ...], _Glob | None, _Paths | None]
"""A rule's work-item conditions left to check once the index proposes it."""

_EXACT = frozenset(["project", "component", "label", "team", "branch", "type", "system"])
"""Index dimensions whose keys are exactly the rule's condition on that dimension."""


def _check(matcher: _WorkMatcher, candidate: Candidate, best: Sequence[Key]) -> Check:
    """The rule's conditions less what being proposed already proves: the work item has one of
    the keys the rule is filed under, and the system of the index it is filed in."""
    implied = frozenset(best) if best and best[0][0] in _EXACT else frozenset()
    systems = _systems(candidate.rule)
    required = matcher.required
    if len(systems) == 1:
        required = required - {("system", s) for s in systems}
    if len(implied) == 1:
        required = required - implied
    alternatives = tuple(a for a in matcher.alternatives if a != implied)
    return required, alternatives, matcher.projects, matcher.paths


_CONTEXT_DIMENSIONS = frozenset(["any", "branch", "project", "pprefix", "system", "team", "type"])
"""Index dimensions of a work item's context."""
_OWN_DIMENSIONS = frozenset(["label", "component"])
"""Rule conditions (paths aside) on what varies between work items of one context."""

Split = tuple[Keys, tuple[Keys, ...], _Glob | None, Keys, tuple[Keys, ...], _Paths | None]
"""A rule's check as conditions on the context (keys, key sets, project glob) and conditions on
the rest (keys, key sets, paths)."""


def _split_check(check: Check) -> Split:
    """Part a rule's check into what a work item's context decides and what it does not."""
    required, alternatives, projects, paths = check
    own = frozenset(k for k in required if k[0] in _OWN_DIMENSIONS)
    own_alternatives = tuple(a for a in alternatives if _dimension(a) in _OWN_DIMENSIONS)
    shared = tuple(a for a in alternatives if _dimension(a) not in _OWN_DIMENSIONS)
    return required - own, shared, projects, own, own_alternatives, paths


def _dimension(keys: Keys) -> str:
    return next(iter(keys))[0]  # a rule's key sets each hold one dimension


Stream = tuple[int, ...]
"""Codes of lessons, ascending."""


def _limit(streams: list[Stream], depth: int, limit: int) -> int:
    """The smallest `depth`-th code of the lists longer than `depth`, and `limit` (-1 for none):
    up to it, the first `depth` codes of each list hold every code of the lists."""
    for stream in streams:
        if len(stream) > depth:
            last = stream[depth - 1]
            if limit < 0 or last < limit:
                limit = last
    return limit


def _read(streams: list[Stream], limit: int) -> list[int]:
    """Every code up to `limit` (every code when it is -1) of the sorted lists."""
    batch: list[int] = []
    if limit < 0:
        for stream in streams:
            batch += stream
    else:
        for stream in streams:
            batch += stream if stream[-1] <= limit else stream[: bisect_right(stream, limit)]
    return batch


class _Context:
    """What work items sharing system, project, team, type and base branch have in common."""

    __slots__ = (
        "active",
        "always",
        "group_keys",
        "keys",
        "maybe",
        "own_groups",
        "own_rules",
        "project",
        "proposed",
        "ranks",
        "reads",
        "rule_streams",
        "service",
        "streams",
    )

    def __init__(self, project: str, keys: Keys, proposed: int) -> None:
        self.project = project
        self.keys = keys
        self.service = _service_key(project)
        """The context's service key: the only one of its keys a work item's own keys can have."""
        self.proposed = proposed
        """How many rules the index proposed for the context."""
        self.always: list[_Compiled] = []
        """Rules every work item of the context matches."""
        self.maybe: list[_Compiled] = []
        """Rules whose conditions on the context hold, the others still to check."""
        self.streams: list[tuple[int, ...]] = []
        """Lesson lists of the `always` rules for the context's keys."""
        self.own_groups: dict[Key, list[tuple[int, ...]]] = {}
        """Lesson lists of the `always` rules under keys outside the context, as they come
        up."""
        self.group_keys: list[Key] = []
        """The context's keys that some rule keeps restricted lessons under."""
        self.reads: dict[int, tuple[list[int], int]] = {}
        self.ranks: list[int] = []
        """Precedence ranks of the `always` rules."""
        self.active: Active = []
        """The `always` rules, strongest first."""
        self.own_rules: dict[Key, tuple[list[_Compiled], list[_Compiled]]] = {}
        """Per own key of a work item, the rules filed under it that match whenever it is
        proposed, and the others whose conditions on the context hold (as they come up)."""
        self.rule_streams: dict[_Compiled, list[tuple[int, ...]]] = {}
        """Lesson lists of other matched rules for the context's keys, as they come up."""

    def read(self, depth: int) -> tuple[list[int], int]:
        """The codes of `streams` up to their `_limit` at `depth`, sorted, kept per depth."""
        found = self.reads.get(depth)
        if found is None:
            limit = _limit(self.streams, depth, -1)
            batch = _read(self.streams, limit)
            batch.sort()
            found = self.reads[depth] = (batch, limit)
        return found


class _Compiled:
    """One rule, compiled: its matcher, the lessons it selects and their placement codes."""

    __slots__ = (
        "candidate",
        "decisions",
        "group_mask",
        "mandate",
        "matcher",
        "members",
        "override",
        "own_alternatives",
        "own_exact",
        "own_paths",
        "own_required",
        "priority",
        "rank",
        "stream",
        "suppress",
    )

    def __init__(
        self, candidate: Candidate, matcher: _WorkMatcher, members: bytes, priority: int
    ) -> None:
        self.candidate = candidate
        self.matcher = matcher
        self.members = members
        """The lessons the rule selects, one bit per lesson number (see `_selects`)."""
        action = candidate.rule.then
        self.mandate = _NO_MANDATE if action.mandate is None else MANDATE_ORDER[action.mandate]
        self.priority = priority
        """Rank of the rule's priority among the rule set's (highest first)."""
        self.stream: tuple[int, ...] = ()
        """Codes of the selected lessons any work item may take, ascending."""
        self.override = candidate.rule.override_applicability
        """The rule may place lessons where their applicability says they do not belong."""
        self.suppress = action.suppress
        self.rank = 0
        """The rule's rank in precedence (higher wins; no two rules tie)."""
        self.decisions: dict[int, Decision] = {}
        """Decisions for lessons the rule placed, by lesson number (see `Engine._decision`)."""
        self.group_mask = 0
        """One bit per key the rule keeps restricted lessons under (see `Engine._group_bits`)."""
        # The rule's conditions that a work item's context does not decide (see `_split_check`).
        self.own_required: Keys = _EMPTY
        self.own_alternatives: tuple[Keys, ...] = ()
        self.own_paths: _Paths | None = None
        self.own_exact: Keys | None = None
        """The path keys deciding `own_paths` on clean paths, when its patterns are all keys."""


def _bits(numbers: Iterable[int], count: int) -> bytes:
    """A set of numbers below `count` as a bitmap: a tenth of a frozenset's memory, and a look-up
    reads one byte of it."""
    bitmap = bytearray((count + 7) // 8)
    for n in numbers:
        bitmap[n >> 3] |= 1 << (n & 7)
    return bytes(bitmap)


def _selects(bits: bytes, n: int) -> bool:
    """Number `n` is in the bitmap."""
    return bool(bits[n >> 3] >> (n & 7) & 1)


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


def _code(mandate: int, lesson: int, priorities: int, priority: int, span: int, low: int) -> int:
    """A lesson's code under a rule: from the rule's mandate order and priority rank, the
    lesson's mandate order, and the lesson's low part (severity, then id)."""
    return ((mandate if mandate < lesson else lesson) * priorities + priority) * span + low


Active = list[_Compiled]
"""Matched rules for one work item, strongest first."""


class Engine:
    """A rule set compiled against the published lessons; immutable, so it can be swapped.

    A lesson's place in the placement order (mandate, then priority, then severity, then id) is
    one integer, its code: `((mandate order × P + priority rank) × 8 + severity rank) × L + id
    rank`, where P counts the distinct priorities and L the lessons.
    """

    def __init__(self, rule_set: RuleSet, lessons: Sequence[Lesson]) -> None:
        self.rule_set = rule_set
        self.lessons = tuple(lessons)
        self.by_id = {lesson.id: lesson for lesson in self.lessons}
        self._number = {lesson.id: i for i, lesson in enumerate(self.lessons)}
        self._globs: dict[tuple[str, ...], _Glob] = {}
        scopes: dict[Scope, _Scope] = {}
        self._applies = [
            (
                self._scope(x.applicability, scopes, True),
                self._scope(x.applicability.exclusions, scopes, False),
            )
            for x in self.lessons
        ]
        self._free = [not req.constrains and exc.empty for req, exc in self._applies]
        self._budgets = {
            team: rule_set.team_budget(team).max_items_per_work_item
            for team in {p.team for p in rule_set.packs}
        }
        self._default_budget = rule_set.organisation_budget.max_items_per_work_item
        candidates: list[tuple[Candidate, str | None]] = []
        for pack in rule_set.packs:
            for rule in pack.rules:
                team = pack.team if pack.level == Level.TEAM else None
                candidates.append((Candidate(rule, pack, len(candidates)), team))
        self._encoding(candidates)
        restricted = self._index_restricted()
        lesson_index = self._index_lessons()
        self._groups: dict[Key, dict[_Compiled, tuple[int, ...]]] = defaultdict(dict)
        """Per key, per rule: codes of the selected lessons that may apply only to work items
        with that key, ascending."""
        self._rules = [
            self._compile(candidate, lesson_index, team, restricted)
            for candidate, team in candidates
        ]
        self._groups = dict(self._groups)
        strongest = sorted(range(len(candidates)), key=lambda n: candidates[n][0].precedence)
        for rank, n in enumerate(strongest):
            self._rules[n].rank = rank
        self._strongest = [self._rules[n] for n in strongest]
        """The compiled rules by rank in precedence."""
        self._index, self._wildcard = self._index_rules(candidates)
        self._by_system = {
            system.value: _for_system(system.value, self._index, self._wildcard, candidates)
            for system in System
        }
        self._prefix_lengths = sorted(
            {len(k[1]) for k in self._index if k[0] == "pprefix"}
            | {len(k[1]) for keys in restricted if keys for k in keys if k[0] == "pprefix"}
        )
        self._group_universe = frozenset(self._groups)
        self._group_bits = {key: 1 << n for n, key in enumerate(self._groups)}
        """A bit per key restricted lessons are kept under: a work item's keys and a rule's
        keys meet when their masks do, one integer operation instead of a look-up per key."""
        for key, by_rule in self._groups.items():
            bit = self._group_bits[key]
            for compiled in by_rule:
                compiled.group_mask |= bit
        self._own_universe = frozenset(k for k in self._index if k[0] not in _CONTEXT_DIMENSIONS)
        self._deciding: list[_Compiled] = []
        """Rules with kept decisions."""
        self._decided = 0
        """How many decisions the rules keep."""
        self._branches = frozenset(b for c, _ in candidates for b in c.rule.work_item.base_branches)
        self._contexts: dict[tuple[str, str, str | None, str, str | None], _Context] = {}
        self._own = _OwnKeys(self._referenced_keys())

    def _referenced_keys(self) -> Keys:
        """Every key some rule or lesson condition looks at: a work item's other keys can be
        left out without changing any verdict."""
        found: set[Key] = set(self._index) | set(self._groups)
        for required, shared, _, own, own_alternatives, paths in self._splits:
            found.update(required, own, *shared, *own_alternatives)
            if paths is not None:
                found.update(paths.keys)
        for scope in {s for pair in self._applies for s in pair}:
            found.update(scope.required, scope.any_of, *scope.alternatives)
            if scope.paths is not None:
                found.update(scope.paths.keys)
        return frozenset(found)

    def _scope(self, scope: Scope, scopes: dict[Scope, _Scope], required: bool) -> _Scope:
        """One `_Scope` per distinct scope (applicabilities compared without their tags, which
        only exclusions use): fewer objects for the garbage collector to walk."""
        if required:
            scope = Scope(
                services=scope.services,
                components=scope.components,
                repos=scope.repos,
                paths=scope.paths,
                teams=scope.teams,
            )
        found = scopes.get(scope)
        if found is None:
            found = scopes[scope] = _Scope(scope, self._glob)
        return found

    def _glob(self, patterns: Iterable[str]) -> _Glob | None:
        """One shared `_Glob` per pattern set, so its memo serves every rule and lesson using it."""
        key = tuple(patterns)
        found = self._globs.get(key)
        if found is None:
            regex = compile_globs(key)
            if regex is None:
                return None
            found = self._globs[key] = _Glob(regex)
        return found

    def _encoding(self, candidates: Sequence[tuple[Candidate, str | None]]) -> None:
        """Number priorities and lesson ids so that a lesson's placement order is one integer."""
        count = len(self.lessons)
        ranked = sorted(range(count), key=lambda i: (self.lessons[i].id, i))
        self._by_rank = ranked
        priorities = sorted({c.priority for c, _ in candidates}, reverse=True)
        self._priority_rank = {p: r for r, p in enumerate(priorities)}
        self._span = 8 * count
        self._required_end = max(1, len(priorities)) * self._span
        """Codes below this are required lessons."""
        self._low = [0] * count
        for rank, i in enumerate(ranked):
            self._low[i] = (self.lessons[i].severity_rank or 6) * count + rank
        self._lesson_mandate = [MANDATE_ORDER[x.mandate] for x in self.lessons]

    def _index_rules(
        self, candidates: Sequence[tuple[Candidate, str | None]]
    ) -> tuple[dict[Key, list[int]], list[int]]:
        """File each rule under its most selective option; rules with none are wildcards."""
        options = [_index_options(c.rule, team) for c, team in candidates]
        index: dict[Key, list[int]] = defaultdict(list)
        wildcard: list[int] = []
        popularity = Counter(key for rule_options in options for o in rule_options for key in o)
        self._splits: list[Split] = []
        for (candidate, _), rule_options in zip(candidates, options, strict=True):
            best: list[Key] = []
            if rule_options:
                best = min(rule_options, key=lambda o: sum(popularity[k] for k in o))
            else:
                wildcard.append(candidate.order)
            for key in best:
                index[key].append(candidate.order)
            check = _check(self._rules[candidate.order].matcher, candidate, best)
            self._splits.append(_split_check(check))
        for rule, split in zip(self._rules, self._splits, strict=True):
            rule.own_required, rule.own_alternatives, rule.own_paths = split[3:]
            rule.own_exact = _only_keys(split[5])
        return dict(index), wildcard

    def _index_restricted(self) -> list[list[Key] | None]:
        """For each lesson whose applicability constrains work items, keys one of which every
        work item it applies to has (`any` when nothing indexable); None for the others."""
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
            found.extend(_path_options(a.paths))
            options.append(found)
        popularity = Counter(k for found in options for o in found for k in o)
        chosen: list[list[Key] | None] = []
        for (required, _), found in zip(self._applies, options, strict=True):
            if not required.constrains:
                chosen.append(None)
            elif found:
                chosen.append(min(found, key=lambda o: sum(popularity[k] for k in o)))
            else:
                chosen.append([_ANY])  # constrained, but by nothing indexable
        return chosen

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
        self,
        candidate: Candidate,
        index: dict[Key, list[int]],
        team: str | None,
        restricted: Sequence[list[Key] | None],
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
        members = [i for i in pool if _lesson_selector(rule, self.lessons[i])]
        matcher = _WorkMatcher(rule, team, self._glob)
        bits = _bits(members, len(self.lessons))
        compiled = _Compiled(candidate, matcher, bits, self._priority_rank[candidate.priority])
        if rule.then.suppress:
            return compiled  # a suppressing rule never decides a placement
        mandate, priority = compiled.mandate, compiled.priority
        low, lesson_mandate = self._low, self._lesson_mandate
        stream: list[int] = []
        groups: dict[Key, list[int]] = defaultdict(list)
        priorities, span = len(self._priority_rank), self._span
        for i in members:
            code = _code(mandate, lesson_mandate[i], priorities, priority, span, low[i])
            keys = restricted[i]
            if keys is None or rule.override_applicability:
                stream.append(code)  # the rule may place it in any work item it matches
            else:
                for key in keys:
                    groups[key].append(code)
        compiled.stream = tuple(sorted(stream))
        for key, codes in groups.items():
            self._groups[key][compiled] = tuple(sorted(codes))
        return compiled

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
        bits = self._rules[number].members
        return frozenset(
            8 * at + k for at, byte in enumerate(bits) if byte for k in range(8) if byte >> k & 1
        )

    def biggest_buckets(self, count: int) -> list[tuple[Key, int]]:
        """The most crowded index buckets (for diagnostics)."""
        sizes = sorted(((k, len(v)) for k, v in self._index.items()), key=lambda kv: -kv[1])
        return sizes[:count]

    def applicable(self, item: WorkItem, numbers: Iterable[int]) -> set[int]:
        """Of the lessons `numbers` (by number), those whose applicability holds for `item` and
        whose exclusions do not match it (what `rules.reference.applicability_failure` finds
        no failure in), through the compiled scopes."""
        _, view = self._view(item)
        free = self._free
        return {i for i in numbers if free[i] or self._applies_to(i, view)}

    def matched_rules(self, item: WorkItem) -> tuple[int, list[int]]:
        """How many rules the index proposed for `item`, and the numbers of those that match."""
        context, view, extra = self._prepare(item)
        index = self._by_system[item.system][0]
        proposed = {n for key in view.own for n in index.get(key, ())}
        return context.proposed + len(proposed), sorted(
            r.candidate.order for r in context.always + extra
        )

    def _context(self, item: WorkItem) -> _Context:
        # Work items of one repository or Jira project come again and again, and mostly share
        # team, type and base branch: what those decide is worked out once for all of them.
        # A base branch no rule names (a release branch, say) is like none at all.
        branch = item.base_branch if item.base_branch in self._branches else None
        key = (item.system, item.project, item.team, item.type, branch)
        context = self._contexts.get(key)
        if context is None:
            context = self._new_context(item, branch)
            if len(self._contexts) >= _MEMO_SIZE:
                self._contexts.clear()
            self._contexts[key] = context
        return context

    def _new_context(self, item: WorkItem, branch: str | None) -> _Context:
        keys = _context_keys(item, self._prefix_lengths, branch)
        index, wildcard = self._by_system[item.system]
        proposed: set[int] = set(wildcard)
        for key in keys:
            proposed.update(index.get(key, ()))
        context = _Context(item.project, keys, len(proposed))
        self._sort_on_context(sorted(proposed), context, context.always, context.maybe)
        context.ranks = [rule.rank for rule in context.always]
        context.active = [self._strongest[rank] for rank in sorted(context.ranks, reverse=True)]
        groups = self._groups
        context.group_keys = [k for k in keys if k in groups]
        context.streams = [rule.stream for rule in context.always if rule.stream]
        for key in context.group_keys:
            context.streams.extend(filter(None, map(groups[key].get, context.always)))
        return context

    def _rule_streams(self, context: _Context, rule: _Compiled) -> list[tuple[int, ...]]:
        """The rule's lesson lists for work items of the context (kept there)."""
        found = [rule.stream] if rule.stream else []
        for key in context.group_keys:
            codes = self._groups[key].get(rule)
            if codes:
                found.append(codes)
        context.rule_streams[rule] = found
        return found

    def _own_rules(
        self, context: _Context, key: Key, system: str
    ) -> tuple[list[_Compiled], list[_Compiled]]:
        """Rules filed under one of a work item's own keys whose conditions on the context hold:
        those with no other condition, and the others (kept in the context)."""
        sure: list[_Compiled] = []
        unsure: list[_Compiled] = []
        self._sort_on_context(self._by_system[system][0].get(key, ()), context, sure, unsure)
        context.own_rules[key] = (sure, unsure)
        return sure, unsure

    def _sort_on_context(
        self,
        numbers: Iterable[int],
        context: _Context,
        sure: list[_Compiled],
        unsure: list[_Compiled],
    ) -> None:
        """Of rules `numbers`, those whose conditions on the context hold go to `sure` when
        they have no other condition, else to `unsure`."""
        keys = context.keys
        for n in numbers:
            required, alternatives, projects, own, own_alternatives, paths = self._splits[n]
            if not required <= keys or any(a.isdisjoint(keys) for a in alternatives):
                continue
            if projects is not None and not projects.match(context.project):
                continue
            decided = not (own or own_alternatives or paths is not None)
            (sure if decided else unsure).append(self._rules[n])

    def _prepare(self, item: WorkItem) -> tuple[_Context, _View, list[_Compiled]]:
        """The work item's context, its view, and its matched rules beyond the context's."""
        context, view = self._view(item)
        return context, view, self._matched(context, view)

    def _view(self, item: WorkItem) -> tuple[_Context, _View]:
        """The work item's context and its view."""
        context = self._context(item)
        own, clean = self._own(item)
        own.discard(context.service)  # the one key a label or component can share with it
        return context, _View(item, own, context.keys, clean)

    def _matched(self, context: _Context, view: _View) -> list[_Compiled]:
        """The matched rules beyond the context's `always`."""
        proposed = view.own & self._own_universe
        if not proposed and not context.maybe:
            return []
        sure: set[_Compiled] = set()
        unsure: set[_Compiled] = set(context.maybe)
        memo = context.own_rules
        for key in proposed:
            found = memo.get(key) or self._own_rules(context, key, view.item.system)
            sure.update(found[0])
            unsure.update(found[1])
        extra = list(sure)
        keys = view.own  # label and component keys are never context's
        clean = view.clean
        for rule in unsure:
            if not rule.own_required <= keys:
                continue
            for need in rule.own_alternatives:
                if need.isdisjoint(keys):
                    break
            else:
                exact = rule.own_exact
                if clean and exact is not None:  # path patterns that are all key look-ups
                    if not exact.isdisjoint(keys):
                        extra.append(rule)
                else:
                    paths = rule.own_paths
                    if paths is None or paths.match(view):
                        extra.append(rule)
        return extra

    def route(self, item: WorkItem, *, already_placed: Collection[str] = ()) -> Routing:
        """Decide which lessons to place in `item`."""
        context, view, extra = self._prepare(item)
        own = view.own
        streams: list[tuple[int, ...]] = []
        if extra:
            # Strongest rule first, so the first rule found selecting a lesson is its decider.
            strongest = self._strongest
            ranks = context.ranks + [rule.rank for rule in extra]
            ranks.sort(reverse=True)
            active: Active = [strongest[rank] for rank in ranks]
            rule_streams = context.rule_streams
            for rule in extra:
                found = rule_streams.get(rule)
                streams += self._rule_streams(context, rule) if found is None else found
        else:
            active = context.active
        groups, own_groups = self._groups, context.own_groups
        own_group = own & self._group_universe
        if own_group:
            bits, mask = self._group_bits, 0
            for key in own_group:
                mask |= bits[key]
                found = own_groups.get(key)
                if found is None:
                    by_rule = groups[key]
                    found = [by_rule[rule] for rule in context.always if rule in by_rule]
                    own_groups[key] = found
                streams += found
            for rule in extra:
                if rule.group_mask & mask:
                    for key in own_group:
                        codes = groups[key].get(rule)
                        if codes is not None:
                            streams.append(codes)
        placed_before = {self._number[x] for x in already_placed if x in self._number}
        room = self._budgets.get(item.team, self._default_budget) - len(already_placed)
        # Read a few codes of every list first; read deeper only when those do not settle it.
        depth = max(room, 0) + 4
        while True:
            shared, shared_limit = context.read(depth)
            limit = _limit(streams, depth, shared_limit)
            # Codes past the limit are never needed: leave them unread.
            batch = _read(streams, limit)
            if limit == shared_limit or limit < 0:
                batch += shared
            else:
                batch += shared[: bisect_right(shared, limit)]
            batch.sort()
            chosen = self._settle(view, active, (batch, limit), placed_before, room)
            if chosen is not None:
                break
            depth *= 4
        return Routing(
            tuple([rule.decisions.get(i) or self._decision(i, rule) for i, rule in chosen])
        )

    def _settle(
        self,
        view: _View,
        active: Active,
        read: tuple[list[int], int],
        placed_before: set[int],
        room: int,
    ) -> list[tuple[int, _Compiled]] | None:
        """The lessons to place, in order, as (lesson, deciding rule), from the codes `read` from
        the matched rules' lists and the limit up to which they are complete (see `_read`); None
        when that is not enough to be sure.

        A lesson's first code is its smallest; when another rule decides for it, its true code
        is later and waits in `pending` until it is due.
        """
        batch, limit = read
        if limit < 0:
            limit = batch[-1] if batch else 0
            complete = True
        else:
            complete = False
        required_end, count, by_rank = self._required_end, len(self.lessons), self._by_rank
        free, lesson_mandate = self._free, self._lesson_mandate
        priorities, span = len(self._priority_rank), self._span
        pending: list[int] = []
        deciders: dict[int, _Compiled] = {}
        resolved = set(placed_before)  # a lesson placed before is settled already
        chosen: list[tuple[int, _Compiled]] = []
        for code in batch:
            if code > limit:
                break
            while pending and pending[0] < code:
                if pending[0] >= required_end and room <= 0:
                    return chosen
                due = heapq.heappop(pending)
                chosen.append((by_rank[due % count], deciders[due]))
                room -= 1
            if code >= required_end and room <= 0:
                return chosen  # everything left is advisory and the budget is spent
            i = by_rank[code % count]
            if i in resolved:
                continue
            resolved.add(i)
            ok = free[i] or self._applies_to(i, view)
            # The decider: the strongest matched rule selecting the lesson where it may go.
            for rule in active:
                if _selects(rule.members, i) and (ok or rule.override):
                    break
            else:
                continue
            if rule.suppress:
                decider = self._contested(i, ok, active)
                if decider is None:
                    continue
                rule = decider
            # The code under the decider (any code of a lesson has its low part).
            true = _code(
                rule.mandate, lesson_mandate[i], priorities, rule.priority, span, code % span
            )
            if true == code:
                chosen.append((i, rule))
                room -= 1
            else:
                heapq.heappush(pending, true)
                deciders[true] = rule
        while pending and (complete or pending[0] <= limit):
            if pending[0] >= required_end and room <= 0:
                return chosen
            due = heapq.heappop(pending)
            chosen.append((by_rank[due % count], deciders[due]))
            room -= 1
        if complete or (room <= 0 and limit >= required_end):
            return chosen
        return None

    def _applies_to(self, i: int, view: _View) -> bool:
        """Lesson `i`'s applicability holds for the work item and its exclusions do not."""
        required, excluded = self._applies[i]
        return required.requires(view) and not excluded.touches(view)

    def _contested(self, i: int, ok: bool, active: Active) -> _Compiled | None:
        """The deciding rule when the strongest rule suppresses lesson `i` (None for none): it
        may give way to an organisation rule, as the full precedence rules say."""
        found = [
            rule.candidate for rule in active if _selects(rule.members, i) and (ok or rule.override)
        ]
        decider = winner(self.lessons[i], found)[0]
        return None if decider is None else self._rules[decider.order]

    def _decision(self, i: int, rule: _Compiled) -> Decision:
        """The decision for lesson `i` under `rule`; the same every time, so kept with the rule
        (up to a bound on all rules' decisions, past which they start afresh)."""
        decision = rule.decisions.get(i)
        if decision is None:
            decision = decide(self.lessons[i], rule.candidate, self.rule_set.version)
            if self._decided >= 16 * _MEMO_SIZE:
                for kept in self._deciding:
                    kept.decisions = {}
                self._deciding, self._decided = [], 0
            if not rule.decisions:
                self._deciding.append(rule)
            rule.decisions[i] = decision
            self._decided += 1
        return decision
