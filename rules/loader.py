"""Parse rule files (YAML text) into a RuleSet; every error names the file, line and column."""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from core.yaml_strict import StrictLoader
from rules.model import Budget, Level, Pack


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in one rule file, at a line and column when there is a position to point at
    (there is none for a missing path, say)."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        where = "".join(f":{n}" for n in (self.line, self.column) if n is not None)
        return f"{self.file}{where}: {self.message}"

    @property
    def position(self) -> tuple[str, int, int]:
        """Sort key: file, then line and column (a problem without a position comes first)."""
        return (self.file, self.line or 0, self.column or 0)


class RuleSetError(Exception):
    """The rule files do not form a valid rule set; `errors` lists every problem found, in file
    and line order."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        ordered = sorted(errors, key=lambda e: e.position)
        super().__init__("\n".join(str(e) for e in ordered))
        self.errors = tuple(ordered)


@dataclass(frozen=True)
class RuleSet:
    """Validated packs plus a version that changes whenever any rule file's content does."""

    packs: tuple[Pack, ...]
    version: str
    sources: tuple[str, ...] = field(default=())

    @property
    def organisation_budget(self) -> Budget:
        """The strictest budget any organisation pack sets (default 5 items)."""
        budgets = [p.budget for p in self.packs if p.level == Level.ORGANISATION and p.budget]
        return min(budgets, key=lambda b: b.max_items_per_work_item, default=Budget())

    def team_budget(self, team: str | None) -> Budget:
        """A team pack's budget for its own work items, else the organisation's."""
        for pack in self.packs:
            if pack.level == Level.TEAM and pack.team == team and pack.budget is not None:
                return pack.budget
        return self.organisation_budget


def _mark(node: yaml.Node | None) -> tuple[int, int]:
    mark = node.start_mark if node is not None else None
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def _repeated_rule_ids(root: yaml.Node | None, file: str) -> list[RuleError]:
    """Each repeat of a rule id, at the repeated `id` value."""
    rules = _node_at(root, ["rules"])
    if not isinstance(rules, yaml.SequenceNode):
        return []
    first: dict[str, int] = {}
    errors = []
    for number in range(len(rules.value)):
        node = _node_at(rules, [number, "id"])
        if not isinstance(node, yaml.ScalarNode):
            continue
        if node.value in first:
            line, column = _mark(node)
            message = (
                f"rules.{number}.id: rule ids repeat within the pack: [{node.value!r}] "
                f"(first at rules.{first[node.value]})"
            )
            errors.append(RuleError(file, line, column, message))
        else:
            first[node.value] = number
    return errors


def _node_at(
    node: yaml.Node | None, loc: Sequence[int | str], *, at_key: bool = False
) -> yaml.Node | None:
    """The YAML node a pydantic error location points at (or its nearest existing parent);
    with `at_key`, the key of the last mapping entry rather than its value."""
    for depth, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if entry is None:
                return node
            key, value = entry
            if at_key and depth == len(loc) - 1:
                return key  # type: ignore[no-any-return]
            node = value
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _inside(inner: Sequence[int | str], outer: Sequence[int | str]) -> bool:
    return len(inner) > len(outer) and tuple(inner[: len(outer)]) == tuple(outer)


_VALUE_ERROR = "Value error, "  # pydantic's prefix to the message of a validator's ValueError


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    expected = error["msg"].removeprefix(_VALUE_ERROR)
    if error["type"] == "extra_forbidden":
        expected = f"unknown key {error['loc'][-1]!r}"
    elif error["type"] == "missing":
        expected = f"missing required key {error['loc'][-1]!r}"
    return f"{where}: {expected}" if where else expected


def parse_pack(text: str, file: str) -> Pack:
    """One rule file's text → a Pack, or RuleSetError with file:line:column for each problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise RuleSetError([RuleError(file, line, column, f"YAML: {exc.problem}")]) from exc
    except RecursionError as exc:
        raise RuleSetError([RuleError(file, None, None, "YAML: nested too deeply")]) from exc
    except ValueError as exc:  # a number past Python's digit limit for integers
        raise RuleSetError([RuleError(file, None, None, f"YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise RuleSetError([RuleError(file, 1, 1, "expected a mapping with `pack` and `rules`")])
    repeated = _repeated_rule_ids(root, file)
    try:
        pack = Pack.model_validate(data)
    except ValidationError as exc:
        errors = list(repeated)
        found = exc.errors(include_url=False, include_input=False)
        for error in found:
            if any(_inside(other["loc"], error["loc"]) for other in found):
                continue  # a container's "too short" echoes the errors of its own items
            if repeated and "rule ids repeat" in error["msg"]:
                continue  # already reported at each repeated id
            node = _node_at(root, error["loc"], at_key=error["type"] == "extra_forbidden")
            line, column = _mark(node)
            errors.append(RuleError(file, line, column, _describe(error)))
        raise RuleSetError(errors) from exc
    if repeated:
        raise RuleSetError(repeated)
    return pack


def build_rule_set(
    files: Iterable[tuple[str, str]], keys: Mapping[str, str] | None = None
) -> RuleSet:
    """(file name, text) pairs → a RuleSet; pack names must be unique across files.

    The version hashes each file's text with its key (`keys[name]`, by default the name): the
    path relative to the rules root, so that the same files give the same version however the
    root was spelled or wherever the checkout lives. Error messages keep the name as given.
    """
    packs: list[Pack] = []
    errors: list[RuleError] = []
    digest = hashlib.sha256()
    names: list[str] = []
    seen: dict[str, str] = {}
    listed = sorted(files)
    keyed = sorted(((keys or {}).get(name, name), text) for name, text in listed)
    for key, text in keyed:
        digest.update(key.encode() + b"\0" + text.encode() + b"\0")
    for name, text in listed:
        names.append(name)
        try:
            pack = parse_pack(text, name)
        except RuleSetError as exc:
            errors.extend(exc.errors)
            continue
        if pack.pack in seen:
            line, column = _mark(_node_at(yaml.compose(text, Loader=yaml.SafeLoader), ["pack"]))
            message = f"pack {pack.pack!r} is also in {seen[pack.pack]}"
            errors.append(RuleError(name, line, column, message))
            continue
        seen[pack.pack] = name
        packs.append(pack)
    if errors:
        raise RuleSetError(errors)
    return RuleSet(packs=tuple(packs), version=digest.hexdigest()[:12], sources=tuple(names))
