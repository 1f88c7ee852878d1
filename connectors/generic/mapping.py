"""Mapping any tracker's JSON to a canonical Incident with a YAML file (pure).

```yaml
source: statuspal                  # the Incident.source of mapped incidents
match: {event: incident.updated}   # optional: other deliveries are acknowledged and ignored
fields:                            # Incident field: JSON path (`a.b`, `a[0]`, `a[*].name`)
  external_id: incident.id         # required, with title and status
  title: incident.name
  status: incident.state
  services: incident.components[*].name
values:                            # optional value maps; null means "ignore this delivery"
  status: {investigating: triggered, resolved: resolved, scheduled: null}
  severity: {major: high, minor: low}
```
Values not in a map are used as they are; a status Cairn does not know ignores the delivery, an
unknown severity becomes medium.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors import fields
from core.errors import ConfigurationError, PayloadError
from core.incident import Incident, IncidentStatus, Severity

_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\*|\d+)\]")
LIST_FIELDS = frozenset(
    {"services", "components", "teams", "tags", "contributing_factors", "action_items"}
)
SCALAR_FIELDS = frozenset(
    {
        "external_id",
        "title",
        "status",
        "severity",
        "started_at",
        "resolved_at",
        "url",
        "postmortem_url",
        "summary",
    }
)
REQUIRED = ("external_id", "title", "status")
SOURCE_MAX = 40
VALUE_MAPS = {"status": {s.value for s in IncidentStatus}, "severity": {s.value for s in Severity}}

Step = str | int | None
"""A key, a list index, or None for `[*]` (every element)."""


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """A loaded mapping file."""

    source: str
    fields: dict[str, tuple[Step, ...]]
    match: dict[tuple[Step, ...], str]
    values: dict[str, dict[str, str | None]]


def parse_path(text: str) -> tuple[Step, ...]:
    """`a.b[0].c[*]` → ('a', 'b', 0, 'c', None); ValueError when it is not a path."""
    steps: list[Step] = []
    position = 0
    while position < len(text):
        found = _STEP.match(text, position)
        if found is None or (position == 0 and text.startswith(".")):
            raise ValueError(f"not a JSON path: {text!r}")
        key, index = found.groups()
        steps.append(key if key is not None else (None if index == "*" else int(index)))
        position = found.end()
    if not steps:
        raise ValueError("empty JSON path")
    return tuple(steps)


def resolve(data: object, path: tuple[Step, ...]) -> list[object]:
    """Every value the path reaches (lists at the end are flattened)."""
    current = [data]
    for step in path:
        following: list[object] = []
        for value in current:
            if step is None:
                following.extend(value if isinstance(value, list) else [])
            elif _has(value, step):
                following.append(value[step])  # type: ignore[index]
        current = following
    flat: list[object] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return [v for v in flat if v is not None]


def _has(value: object, step: str | int) -> bool:
    if isinstance(step, str):
        return isinstance(value, dict) and step in value
    return isinstance(value, list) and -len(value) <= step < len(value)


def load(path: Path) -> FieldMapping:
    """Read and check a mapping file; ConfigurationError lists every problem as file:line."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the mapping file") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"{path}{line}: not valid YAML") from exc
    return _Loader(path).mapping(root)


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[str] = []

    def error(self, node: yaml.Node, message: str) -> None:
        self.errors.append(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def pairs(self, node: yaml.Node | None, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            if node is not None:
                self.error(node, f"{what} must be a mapping")
            return []
        return [(k, v) for k, v in node.value if self.scalar(k, f"a key in {what}") is not None]

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
            return str(node.value)
        self.error(node, f"{what} must be a string")
        return None

    def path_of(self, node: yaml.Node, what: str) -> tuple[Step, ...] | None:
        text = self.scalar(node, what)
        try:
            return None if text is None else parse_path(text)
        except ValueError as exc:
            self.error(node, f"{what}: {exc}")
            return None

    def mapping(self, root: yaml.Node | None) -> FieldMapping:
        if root is None:
            raise ConfigurationError(f"{self.path}: the mapping file is empty")
        sections: dict[str, yaml.Node] = {}
        for key, value in self.pairs(root, "the mapping file"):
            if key.value not in ("source", "match", "fields", "values"):
                self.error(key, f"unknown key {key.value!r} (source, match, fields, values)")
            sections[key.value] = value
        source = (
            fields.name(self.scalar(sections["source"], "source")) if "source" in sections else None
        )
        if source is None or len(source) > SOURCE_MAX:
            self.error(
                root, f"`source` (the tracker's name, at most {SOURCE_MAX} characters) is required"
            )
        mapped = self.fields(sections.get("fields"), root)
        match = {}
        for key, value in self.pairs(sections.get("match"), "match"):
            path, wanted = self.path_of(key, "match"), self.scalar(value, "a match value")
            if path is not None and wanted is not None:
                match[path] = wanted
        values = self.values(sections.get("values"))
        if self.errors:
            raise ConfigurationError("\n".join(self.errors))
        return FieldMapping(source or "", mapped, match, values)

    def fields(self, node: yaml.Node | None, root: yaml.Node) -> dict[str, tuple[Step, ...]]:
        mapped: dict[str, tuple[Step, ...]] = {}
        for key, value in self.pairs(node, "fields"):
            if key.value not in SCALAR_FIELDS | LIST_FIELDS:
                self.error(key, f"{key.value!r} is not an Incident field")
            elif (path := self.path_of(value, f"fields.{key.value}")) is not None:
                mapped[key.value] = path
        for name in REQUIRED:
            if name not in mapped and not any(k.value == name for k, _ in self.pairs(node, "")):
                self.error(node or root, f"fields.{name} is required")
        return mapped

    def values(self, node: yaml.Node | None) -> dict[str, dict[str, str | None]]:
        maps: dict[str, dict[str, str | None]] = {}
        for key, table in self.pairs(node, "values"):
            allowed = VALUE_MAPS.get(key.value)
            if allowed is None:
                self.error(key, f"values.{key.value}: only status and severity have value maps")
                continue
            maps[key.value] = {}
            for source_value, target in self.pairs(table, f"values.{key.value}"):
                wanted = None if target.tag == "tag:yaml.org,2002:null" else str(target.value)
                if wanted is not None and wanted not in allowed:
                    self.error(target, f"{wanted!r} is not one of {sorted(allowed)}")
                maps[key.value][source_value.value] = wanted
        return maps


def apply(mapping: FieldMapping, data: object) -> Incident | None:
    """The incident a delivery describes; None when it does not match or its status is ignored."""
    for path, wanted in mapping.match.items():
        if wanted not in [str(v) for v in resolve(data, path)]:
            return None
    found: dict[str, Any] = {}
    for name, path in mapping.fields.items():
        values = resolve(data, path)
        if name in LIST_FIELDS:
            found[name] = values
        elif values:
            found[name] = values[0]
    status = _mapped(mapping, "status", found.get("status"))
    if status not in VALUE_MAPS["status"]:
        return None
    external_id = fields.name(found.get("external_id"), fields.ID_MAX)
    if external_id is None:
        raise PayloadError(f"{_path_text(mapping.fields['external_id'])}: no incident id")
    severity = _mapped(mapping, "severity", found.get("severity"))
    text_lists = ("contributing_factors", "action_items")
    return Incident.model_validate(
        {
            "source": mapping.source,
            "external_id": external_id,
            "title": fields.name(found.get("title")) or f"{mapping.source} incident {external_id}",
            "status": status,
            "severity": severity if severity in VALUE_MAPS["severity"] else Severity.MEDIUM,
            **{n: fields.names(found[n]) for n in LIST_FIELDS - set(text_lists) if n in found},
            **{
                n: tuple(t for t in map(fields.text, found[n]) if t)
                for n in text_lists
                if n in found
            },
            "started_at": fields.timestamp(found.get("started_at")),
            "resolved_at": fields.timestamp(found.get("resolved_at")),
            "url": fields.url(found.get("url")),
            "postmortem_url": fields.url(found.get("postmortem_url")),
            "summary": fields.text(found.get("summary")),
        },
        strict=False,
    )


def _mapped(mapping: FieldMapping, name: str, value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    table = mapping.values.get(name, {})
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return table.get(text, text)


def _path_text(path: tuple[Step, ...]) -> str:
    parts = [f"[{'*' if s is None else s}]" if not isinstance(s, str) else f".{s}" for s in path]
    return "".join(parts).lstrip(".")
