"""The base class for Cairn's own models: strict, frozen, no unknown fields."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


class CoreModel(BaseModel):
    """Strict, immutable model; JSON and database round-trips go through `model_validate_json`."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("timestamp must carry a timezone")
    # A zero offset (pydantic's parsed "+00:00" or "Z") only needs its tzinfo swapped, which is
    # much cheaper than a conversion.
    return value.replace(tzinfo=UTC) if not offset else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_aware)]
"""A timezone-aware timestamp, normalised to UTC."""


NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]+$"

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS
    ),
]
"""A short non-empty identifier-like string (service, team, tag, label); no control characters."""


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


Text = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_nul)]
"""Free text of bounded size (line breaks allowed, NUL not)."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)
