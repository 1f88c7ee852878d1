"""The `jira` client, built lazily per thread, and the one place Jira calls are retried.

`jira` is synchronous (requests); the pipeline calls targets from worker threads, and one
`JIRA` object per thread keeps sessions unshared. Its own retry loop is switched off
(`max_retries=0`: it would sleep up to 60 s); instead `connectors.retrying.run` retries 429s
(honouring Retry-After), 5xx and network failures briefly, and hands a longer wait back as a
TransientError with `retry_after`, so the pipeline retries the whole message later instead of
holding a worker.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import requests
from jira import JIRA, JIRAError

from connectors.retrying import RETRYABLE, Retryable, RetryPolicy, parse_retry_after, run
from core.errors import AuthenticationError, PayloadError

T = TypeVar("T")
log = logging.getLogger("cairn.jira")


@dataclass(frozen=True, slots=True)
class Credentials:
    """Where Jira is and who Cairn is there; the token never appears in a repr."""

    url: str
    email: str
    token: str
    timeout: float = 20.0

    def __repr__(self) -> str:
        return f"Credentials(url={self.url!r}, email={self.email!r}, token=***)"


def _translate(exc: Exception, what: str) -> Exception:
    """A library error as a Cairn error, or `_Retryable` for what is worth another try."""
    if isinstance(exc, JIRAError):
        status = exc.status_code or 0
        if status in RETRYABLE:
            headers = getattr(exc.response, "headers", None) or {}
            return Retryable(
                f"{what}: Jira answered {status}",
                parse_retry_after(str(headers.get("Retry-After", ""))),
                refused=status == 429,
            )
        if status in (401, 403):
            return AuthenticationError(f"{what}: Jira refused the credentials ({status})")
        if status == 404:
            return PayloadError(f"{what}: not found in Jira (deleted, or not visible to Cairn)")
        return PayloadError(f"{what}: Jira answered {status}")
    if isinstance(exc, requests.RequestException):
        return Retryable(f"{what}: {type(exc).__name__}")
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
                if isinstance(translated, Retryable):
                    log.info("%s; retrying", translated)
                raise translated from exc

        return run(attempt, self.policy, retry_if=lambda exc: idempotent or exc.refused)
