"""Every GitHub API call goes through `call`: tenacity retries, the server's wait, our errors.

PyGithub's own retries are switched off (`retry=None`); this module decides what is worth
retrying, and `connectors.retrying.run` (shared by every connector) does the retrying.
Rate limits (429, or 403 with Retry-After, an exhausted quota or a secondary-rate-limit
message), server errors and network failures are retried a few times, waiting as long as the
server asks; a wait longer than `max_wait` is not slept but handed back as a TransientError with
`retry_after`, so the pipeline retries the whole message later instead of holding a worker.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import requests
from github.GithubException import GithubException

from connectors.retrying import RETRYABLE, Retryable, RetryPolicy, parse_retry_after, run
from core.errors import AuthenticationError, PayloadError, TransientError

T = TypeVar("T")
GONE = frozenset({404, 410, 422})
_SECONDARY = ("secondary rate limit", "abuse detection")


def _headers(exc: GithubException) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (exc.headers or {}).items()}


def _message(exc: GithubException) -> str:
    data = exc.data
    message = data.get("message") if isinstance(data, dict) else None
    return str(message or exc.message or "").lower()


def asked_wait(exc: BaseException) -> float | None:
    """Seconds GitHub asks us to wait: `Retry-After`, or until an exhausted quota resets."""
    if not isinstance(exc, GithubException):
        return None
    headers = _headers(exc)
    asked = parse_retry_after(headers.get("retry-after"))
    if asked is not None:
        return asked
    reset = headers.get("x-ratelimit-reset", "")
    if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return max(0.0, float(reset) - time.time())
    return None


def retryable(exc: BaseException) -> bool:
    """True for rate limits, server errors and network failures."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    if not isinstance(exc, GithubException):
        return False
    if exc.status in RETRYABLE:
        return True
    if exc.status == 403:
        secondary = any(s in _message(exc) for s in _SECONDARY)
        return secondary or asked_wait(exc) is not None
    return False


def translate(exc: Exception, what: str) -> Exception:
    """The Cairn error for a failed GitHub call."""
    if retryable(exc):
        return TransientError(f"{what}: {_describe(exc)}", retry_after=asked_wait(exc))
    if isinstance(exc, GithubException):
        if exc.status in GONE:
            return PayloadError(f"{what}: GitHub answered {exc.status}")
        if exc.status in (401, 403):
            return AuthenticationError(f"{what}: GitHub refused the credentials ({exc.status})")
        if 400 <= exc.status < 500:
            return PayloadError(f"{what}: GitHub answered {exc.status}")
        return TransientError(f"{what}: GitHub answered {exc.status}")
    return TransientError(f"{what}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GithubException):
        return f"GitHub answered {exc.status}"
    return exc.__class__.__name__  # never the message: it may quote a URL with a token


def call(what: str, fn: Callable[[], T], policy: RetryPolicy) -> T:
    """Run one API call (`what` names it in errors), retrying what is worth retrying."""

    def attempt() -> T:
        try:
            return fn()
        except (GithubException, requests.RequestException) as exc:
            if retryable(exc):
                raise Retryable(f"{what}: {_describe(exc)}", asked_wait(exc)) from exc
            raise translate(exc, what) from exc

    return run(attempt, policy)
