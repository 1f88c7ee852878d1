"""The one error hierarchy; connectors translate library errors into it at their boundary."""

from pydantic import ValidationError


class CairnError(Exception):
    """Base of every error Cairn raises on purpose."""


class ConfigurationError(CairnError):
    """Settings are missing or inconsistent; retrying will not help until someone fixes them."""


class AuthenticationError(CairnError):
    """A signature, token or credential did not verify."""


class TransientError(CairnError):
    """A temporary failure (timeout, 5xx, rate limit, lock); the work is retried later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadError(CairnError):
    """Input that can never be processed as sent (malformed, wrong schema)."""


class UnsupportedEventError(CairnError):
    """A well-formed event of a kind Cairn does not act on; acknowledged and ignored."""


class ForbiddenError(CairnError):
    """The acting principal is known but lacks the right for this action or this record."""


class NotFoundError(CairnError):
    """A requested record does not exist."""


class ConflictError(CairnError):
    """The operation conflicts with the record's current state (e.g. an illegal transition)."""


def describe_validation_error(exc: ValidationError, *, tagged: bool = False, limit: int = 5) -> str:
    """A short summary of what was wrong: field paths and messages, never the input itself."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:limit]:
        loc = error["loc"]
        # A tagged union puts the tag first (`incident.incident.title`); the reader wants the path.
        where = ".".join(str(p) for p in (loc[1:] if tagged and len(loc) > 1 else loc)) or "body"
        parts.append(f"{where}: {error['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
