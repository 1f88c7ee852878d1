"""The JQL subset the Jira fake understands, enough for Cairn's sub-task and backfill searches.

Clauses joined by AND, each `field op value`: fields `project`, `parent`, `labels`, `status`,
`statusCategory`, `issuetype`/`type`, `key`/`issuekey`, `resolution`, `assignee`; operators
`=`, `!=`, `in`, `not in`, `is`, `is not`; values bare, "quoted" or a (list), and `EMPTY`;
an optional `ORDER BY key|created [ASC|DESC]`. Anything else is refused like Jira does (400).
"""

import re
from collections.abc import Callable
from typing import Any

Issue = dict[str, Any]
Predicate = Callable[[Issue], bool]

_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(\()|(\))|(,)|(!=|=)|([^\s(),!=]+))')


class JqlError(ValueError):
    """A query outside the supported subset."""


def _tokens(text: str) -> list[str]:
    found: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise JqlError(f"cannot read the query at {text[position:][:20]!r}")
            break
        quoted, *rest = match.groups()
        found.append("\x00" + quoted if quoted is not None else next(t for t in rest if t))
        position = match.end()
    return found


def _values(issue: Issue, field: str) -> list[str]:
    fields = issue["fields"]
    if field == "project":
        return [fields["project"]["key"]]
    if field == "parent":
        parent = fields.get("parent")
        return [parent["key"], parent["id"]] if parent else []
    if field == "labels":
        return list(fields.get("labels") or [])
    if field == "status":
        return [fields["status"]["name"]]
    if field == "statuscategory":
        category = fields["status"]["statusCategory"]
        return [category["key"], category["name"]]
    if field in ("issuetype", "type"):
        return [fields["issuetype"]["name"]]
    if field in ("key", "issuekey"):
        return [issue["key"]]
    if field == "resolution":
        resolution = fields.get("resolution")
        return [resolution["name"]] if resolution else []
    if field == "assignee":
        assignee = fields.get("assignee")
        return [assignee["accountId"]] if assignee else []
    raise JqlError(f"field {field!r} is not supported by the fake")


def _clause(tokens: list[str]) -> tuple[Predicate, list[str]]:
    if len(tokens) < 3:
        raise JqlError("incomplete clause")
    field = tokens[0].lower()
    _values({"key": "", "fields": _PROBE}, field)  # refuse unknown fields up front
    op, rest = tokens[1].lower(), tokens[2:]
    if op in ("not", "is") and rest and rest[0].lower() in ("in", "not"):
        op, rest = f"{op} {rest[0].lower()}", rest[1:]
    if op in ("in", "not in"):
        if not rest or rest[0] != "(":
            raise JqlError("IN needs a (list)")
        end = rest.index(")")
        wanted = [t.lstrip("\x00").lower() for t in rest[1:end] if t != ","]
        rest = rest[end + 1 :]
    else:
        wanted, rest = [rest[0].lstrip("\x00").lower()], rest[1:]

    def matches(issue: Issue) -> bool:
        have = [v.lower() for v in _values(issue, field)]
        if wanted == ["empty"] and op in ("is", "=", "is not", "!="):
            empty = not have
            return empty if op in ("is", "=") else not empty
        hit = any(v in have for v in wanted)
        return hit if op in ("=", "in") else not hit

    if op not in ("=", "!=", "in", "not in", "is", "is not"):
        raise JqlError(f"operator {op!r} is not supported by the fake")
    return matches, rest


_PROBE: dict[str, Any] = {
    "project": {"key": ""},
    "status": {"name": "", "statusCategory": {"key": "", "name": ""}},
    "issuetype": {"name": ""},
}


def compile_jql(text: str) -> tuple[Predicate, tuple[str, bool]]:
    """A predicate over stored issues and the ordering (field, descending)."""
    tokens = _tokens(text)
    order = ("key", False)
    lowered = [t.lower() for t in tokens]
    for index in range(len(lowered) - 1):
        if lowered[index] == "order" and lowered[index + 1] == "by":
            tail = lowered[index + 2 :]
            if not tail or tail[0] not in ("key", "created"):
                raise JqlError("ORDER BY supports key and created")
            order = (tail[0], len(tail) > 1 and tail[1] == "desc")
            tokens = tokens[:index]
            break
    predicates: list[Predicate] = []
    while tokens:
        predicate, tokens = _clause(tokens)
        predicates.append(predicate)
        if tokens:
            if tokens[0].lower() != "and":
                raise JqlError("only AND joins clauses in the fake")
            tokens = tokens[1:]
    return (lambda issue: all(p(issue) for p in predicates)), order
