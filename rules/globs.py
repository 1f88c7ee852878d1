"""Glob patterns (`*` within a segment, `**` across segments) compiled to one regex per set."""

import re
from collections.abc import Iterable

from wcmatch import glob

_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.BRACE


def compile_globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of `patterns`; None for an empty set."""
    patterns = tuple(patterns)
    if not patterns:
        return None
    translated, _excluded = glob.translate(patterns, flags=_FLAGS)
    return re.compile("|".join(f"(?:{p})" for p in translated))


_SPECIAL = "*?[{\\"
_SLASHES = re.compile("/+")


def normalise(value: str) -> str:
    """A work item's project or path as glob matching sees it: runs of `/` are one `/`, and a
    trailing `/` does not count."""
    if "//" not in value and not value.endswith("/"):
        return value
    collapsed = _SLASHES.sub("/", value)
    return collapsed.rstrip("/") or collapsed


def is_literal(pattern: str) -> bool:
    """True when the pattern can only match itself (once normalised): no glob syntax, no escapes,
    no `.` or `..` segments, no empty segments."""
    if any(ch in pattern for ch in _SPECIAL):
        return False
    return all(segment not in ("", ".", "..") for segment in pattern.split("/"))


def literal_prefix(pattern: str) -> str:
    """A string every normalised match of `pattern` starts with ("" when there is none)."""
    cut = min((pattern.find(ch) for ch in _SPECIAL if ch in pattern), default=len(pattern))
    head = normalise(pattern[:cut]) if cut else ""
    if head.startswith("/") or any(s in (".", "..") for s in head.split("/")):
        return ""
    return head


def leading_segments(pattern: str, count: int) -> str | None:
    """The first `count` path segments when every match must have exactly them, else None."""
    segments = pattern.split("/")
    if len(segments) <= count and not is_literal(pattern):
        return None
    head = segments[:count]
    if len(head) < count or not is_literal("/".join(head)):
        return None
    return "/".join(head)
