"""The correlation id: born at ingress with a delivery, carried by every message it causes.

Messages carry it (and the trace context) under `TRACE_KEY` in their payload; while a stage runs
it sits on a context variable, so every log record and span of that work names the delivery.
"""

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

TRACE_KEY = "_trace"
CORRELATION_ID: ContextVar[str | None] = ContextVar("cairn_correlation_id", default=None)


def for_delivery(source: str, delivery_key: str) -> str:
    """The correlation id of one webhook delivery: its source and the sender's delivery id."""
    return f"{source}:{delivery_key}"


def current() -> str | None:
    """The correlation id of the work running now, if any."""
    return CORRELATION_ID.get()


@contextmanager
def bound(correlation_id: str | None) -> Iterator[None]:
    """Run a block on behalf of `correlation_id` (None: on behalf of nothing)."""
    token = CORRELATION_ID.set(correlation_id)
    try:
        yield
    finally:
        CORRELATION_ID.reset(token)


def split(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A message payload without its trace fields, and those fields (empty when it has none)."""
    body = {k: v for k, v in payload.items() if k != TRACE_KEY}
    raw = payload.get(TRACE_KEY)
    if not isinstance(raw, dict):
        return body, {}
    return body, {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}


class CorrelationFilter(logging.Filter):
    """Puts the current correlation id on each record as `correlation_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate; never drop."""
        record.correlation_id = CORRELATION_ID.get()
        return True
