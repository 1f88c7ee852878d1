"""Counts outside calls and the waits before their retries, per connector, in Prometheus."""

from connectors import retrying
from router.metrics import OUTBOUND_CALLS, RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS


class CallMetrics:
    """The observer `connectors.retrying` tells about each call."""

    def called(self, connector: str, result: str) -> None:
        """One call ended."""
        OUTBOUND_CALLS.labels(connector, result).inc()

    def waited(self, connector: str, seconds: float) -> None:
        """One wait before a retry."""
        RATE_LIMIT_WAITS.labels(connector).inc()
        RATE_LIMIT_WAIT_SECONDS.labels(connector).inc(seconds)


def install() -> None:
    """Start counting (once per process)."""
    if not any(isinstance(o, CallMetrics) for o in retrying.OBSERVERS):
        retrying.OBSERVERS.append(CallMetrics())
