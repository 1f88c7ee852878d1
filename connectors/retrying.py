"""Outbound retries in one place: tenacity around one HTTP request, honouring Retry-After.

Only rate limits (429), server errors (5xx) and network failures are retried, a few times and
briefly; a longer wait than `max_wait` is not slept but handed back as a TransientError carrying
`retry_after`, so the pipeline retries the whole message later instead of holding a worker.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from core.errors import AuthenticationError, NotFoundError, PayloadError, TransientError

RETRYABLE = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    attempts: int = 4
    base_wait: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (`Retry-After`: seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.retry_after if isinstance(exc, _Retryable) else None
        if asked is not None:
            return asked
        return float(min(policy.max_wait, policy.base_wait * 2 ** (state.attempt_number - 1)))

    return wait


class _TooLong(stop_base):
    """Stop when the server asks for a longer wait than the policy sleeps."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = exc.retry_after if isinstance(exc, _Retryable) else None
        return asked is not None and asked > self.max_wait


def _refuse(response: httpx.Response, what: str) -> Exception:
    status = response.status_code
    if status in (401, 403):
        return AuthenticationError(f"{what}: the API refused the credentials ({status})")
    if status == 404:
        return NotFoundError(f"{what}: not found")
    return PayloadError(f"{what}: the API answered {status}")


def send(
    client: httpx.Client, request: httpx.Request, policy: RetryPolicy, *, what: str
) -> httpx.Response:
    """Send `request`; a 2xx comes back, everything else is raised as a Cairn error."""

    def attempt() -> httpx.Response:
        try:
            response = client.send(request)
        except httpx.TransportError as exc:
            raise _Retryable(f"{what}: {exc.__class__.__name__}", None) from exc
        if response.status_code in RETRYABLE:
            raise _Retryable(
                f"{what}: the API answered {response.status_code}", retry_after(response)
            )
        if not response.is_success:
            raise _refuse(response, what)
        return response

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | _TooLong(policy.max_wait),
        wait=_wait(policy),
        retry=retry_if_exception_type(_Retryable),
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except _Retryable as exc:
        raise TransientError(str(exc), retry_after=exc.retry_after) from exc
