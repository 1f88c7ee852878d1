"""The `jira` client, built lazily per thread, and the one place Jira calls are retried.

`jira` is synchronous (requests); the pipeline calls targets from worker threads, and one
`JIRA` object per thread keeps sessions unshared. Its own retry loop is switched off
(`max_retries=0`: it would sleep up to 60 s); instead tenacity retries 429s (honouring
Retry-After), 5xx and network failures briefly, and hands a longer wait back as a TransientError
with `retry_after`, so the pipeline retries the whole message later instead of holding a worker.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from jira import JIRA, JIRAError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from core.errors import AuthenticationError, PayloadError, TransientError

T = TypeVar("T")
RETRYABLE = frozenset({429, 500, 502, 503, 504})
log = logging.getLogger("cairn.jira")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long one Jira call is retried before the pipeline takes over."""

    attempts: int = 4
    base_wait: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where Jira is and who Cairn is there; the token never appears in a repr."""

    url: str
    email: str
    token: str
    timeout: float = 20.0

    def __repr__(self) -> str:
        return f"Credentials(url={self.url!r}, email={self.email!r}, token=***)"


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None, *, refused: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.refused = refused
        """True for a 429: Jira did not act on the request, so repeating it is always safe."""


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    value = str(headers.get("Retry-After", "")).strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


class _TooLong(stop_base):
    """Stop when Jira asks for a longer wait than the policy sleeps."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = exc.retry_after if isinstance(exc, _Retryable) else None
        return asked is not None and asked > self.max_wait


def _translate(exc: Exception, what: str) -> Exception:
    """A library error as a Cairn error, or `_Retryable` for what is worth another try."""
    if isinstance(exc, JIRAError):
        status = exc.status_code or 0
        if status in RETRYABLE:
            return _Retryable(
                f"{what}: Jira answered {status}",
                _retry_after(exc.response),
                refused=status == 429,
            )
        if status in (401, 403):
            return AuthenticationError(f"{what}: Jira refused the credentials ({status})")
        if status == 404:
            return PayloadError(f"{what}: not found in Jira (deleted, or not visible to Cairn)")
        return PayloadError(f"{what}: Jira answered {status}")
    if isinstance(exc, requests.RequestException):
        return _Retryable(f"{what}: {type(exc).__name__}", None)
    return exc


class JiraCalls:
    """Runs calls against a lazily built, per-thread `JIRA` client, with retries and counts."""

    def __init__(self, credentials: Credentials, policy: RetryPolicy | None = None) -> None:
        self.credentials = credentials
        self.policy = policy or RetryPolicy()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"JiraCalls({self.credentials!r})"

    def _client(self) -> JIRA:
        client = getattr(self._local, "client", None)
        if client is None:
            creds = self.credentials
            client = JIRA(
                server=creds.url,
                basic_auth=(creds.email, creds.token),
                options={"rest_api_version": "3"},
                max_retries=0,
                timeout=creds.timeout,
            )
            self._local.client = client
        return client

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.retry_after if isinstance(exc, _Retryable) else None
        if asked is not None:
            return asked
        return float(
            min(self.policy.max_wait, self.policy.base_wait * 2 ** (state.attempt_number - 1))
        )

    def run(self, what: str, call: Callable[[JIRA], T], *, idempotent: bool = True) -> T:
        """`call(client)`, retried on 429/5xx/network errors; failures as Cairn errors.

        A create is not idempotent: a 5xx or a lost answer may hide a success, so only a 429 is
        retried here and the rest goes back to the pipeline, whose retry looks before creating.
        """

        def attempt() -> T:
            try:
                return call(self._client())
            except (JIRAError, requests.RequestException) as exc:
                translated = _translate(exc, what)
                if isinstance(translated, _Retryable):
                    log.info("%s; retrying", translated)
                raise translated from exc

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts) | _TooLong(self.policy.max_wait),
            wait=self._wait,
            retry=retry_if_exception(
                lambda exc: isinstance(exc, _Retryable) and (idempotent or exc.refused)
            ),
            sleep=self.policy.sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            raise TransientError(str(exc), retry_after=exc.retry_after) from exc
