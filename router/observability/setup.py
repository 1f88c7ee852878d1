"""Turns on what the settings ask for in a long-running process: JSON logs and tracing."""

from router.observability import logs, tracing
from router.settings import Settings


def configure(settings: Settings) -> None:
    """Apply CAIRN_LOG_FORMAT and CAIRN_OTLP_ENDPOINT to this process."""
    logs.configure(settings.log_format)
    if settings.otlp_endpoint and not tracing.enabled():
        tracing.start_otlp(settings.otlp_endpoint)
