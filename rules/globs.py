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


def is_literal(pattern: str) -> bool:
    """True when the pattern has no glob syntax (it can be looked up in an index)."""
    return not any(ch in pattern for ch in "*?[{")


def literal_prefix(pattern: str) -> str:
    """The leading path segments before the first wildcard (`src/db/**` → `src/db`)."""
    segments = []
    for segment in pattern.split("/"):
        if not is_literal(segment):
            break
        segments.append(segment)
    return "/".join(segments)
