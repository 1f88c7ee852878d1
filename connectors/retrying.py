"""Outbound retries in one place: tenacity around one call, honouring Retry-After.

`run` serves every outside call (httpx here through `send`, PyGithub and `jira` in their
connectors, which only decide what is worth retrying).

Only rate limits (429), server errors (5xx) and network failures are retried, a few times and
briefly; a longer wait than `max_wait` is not slept but handed back as a TransientError carrying
`retry_after`, so the pipeline retries the whole message later instead of holding a worker.
"""

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import FrameType
from typing import Protocol, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from core.errors import AuthenticationError, NotFoundError, PayloadError, TransientError

T = TypeVar("T")
# 429 and every 5xx but 501 (Not Implemented will not change on a retry); proxies in front of
# the vendors answer 520-524 for an origin that timed out or went away.
RETRYABLE = frozenset({429, *range(500, 600)} - {501})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    attempts: int = 4
    base_wait: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep


class Retryable(Exception):
    """A failure worth another try, and how long the server asked us to wait first."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, refused: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.refused = refused
        """True for a 429: the server did not act on the request, so repeating it is safe."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` value asks for (seconds or an HTTP date), if any."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # not '²', which isdigit() accepts
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait, if any."""
    return parse_retry_after(response.headers.get("retry-after"))


def _asked(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return exc.retry_after if isinstance(exc, Retryable) else None


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        asked = _asked(state)
        if asked is not None:
            return asked
        return float(min(policy.max_wait, policy.base_wait * 2 ** (state.attempt_number - 1)))

    return wait


class _TooLong(stop_base):
    """Stop when the server asks for a longer wait than the policy sleeps."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        asked = _asked(retry_state)
        return asked is not None and asked > self.max_wait


class CallObserver(Protocol):
    """Told about every outside call (for metrics): its connector, and each wait before a retry."""

    def called(self, connector: str, result: str) -> None:
        """One call ended: `ok`, or `failed` once the retries ran out (or were not worth it)."""

    def waited(self, connector: str, seconds: float) -> None:
        """A failed or rate-limited try is retried after `seconds`."""


OBSERVERS: list[CallObserver] = []
_SHARED = frozenset({"retrying", "json_api"})


def _connector() -> str:
    """The connector making the call: the nearest caller module in `connectors.<name>`."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        parts = str(frame.f_globals.get("__name__", "")).split(".")
        if len(parts) >= 2 and parts[0] == "connectors" and parts[1] not in _SHARED:
            return parts[1]
        frame = frame.f_back
    return "other"


def _tell_wait(connector: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        seconds = state.upcoming_sleep
        for observer in OBSERVERS:
            observer.waited(connector, seconds)

    return before_sleep


def run(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    retry_if: Callable[[Retryable], bool] = lambda _: True,
) -> T:
    """Call `attempt`, retrying the Retryable failures `retry_if` accepts; once retries run out
    (or the server asks for more than `max_wait`), the failure becomes a TransientError."""
    connector = _connector() if OBSERVERS else ""
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | _TooLong(policy.max_wait),
        wait=_wait(policy),
        retry=retry_if_exception(lambda exc: isinstance(exc, Retryable) and retry_if(exc)),
        sleep=policy.sleep,
        before_sleep=_tell_wait(connector) if OBSERVERS else None,
        reraise=True,
    )
    result = "failed"
    try:
        answer = retrying(attempt)
        result = "ok"
        return answer
    except Retryable as exc:
        raise TransientError(str(exc), retry_after=exc.retry_after) from exc
    finally:
        for observer in OBSERVERS:
            observer.called(connector, result)


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
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # A body that fails to decompress was cut or mangled on the way: try again.
            raise Retryable(f"{what}: {exc.__class__.__name__}") from exc
        if response.status_code in RETRYABLE:
            raise Retryable(
                f"{what}: the API answered {response.status_code}", retry_after(response)
            )
        if not response.is_success:
            raise _refuse(response, what)
        return response

    return run(attempt, policy)
