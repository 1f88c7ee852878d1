"""Coercing vendor values into what core models accept, so a signed event never fails on size.

Vendors allow longer titles, control characters and odd URLs; Cairn's models do not. These
helpers shorten, clean or drop such values instead of rejecting the whole delivery.
"""

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import HttpUrl, TypeAdapter, ValidationError

NAME_MAX, TEXT_MAX, ID_MAX = 200, 20_000, 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def name(value: object, limit: int = NAME_MAX) -> str | None:
    """A one-line, non-empty string of at most `limit` characters, or None."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    cleaned = _CONTROL.sub(" ", str(value)).strip()
    return cleaned[:limit].rstrip() or None


def names(values: Iterable[object]) -> tuple[str, ...]:
    """The usable names among `values`, first occurrence kept."""
    return tuple(dict.fromkeys(n for n in map(name, values) if n is not None))


def text(value: object) -> str:
    """Free text without NUL characters, at most TEXT_MAX long ('' when not a string)."""
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "")[:TEXT_MAX].strip()


def url(value: object) -> str | None:
    """An http(s) URL pydantic accepts, or None."""
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        return None
    try:
        return str(_URL.validate_python(value))
    except ValidationError:
        return None


def timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text or epoch s/ms/µs/ns numbers, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        while abs(seconds) > 1e11:  # milliseconds, microseconds or nanoseconds
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    return None
