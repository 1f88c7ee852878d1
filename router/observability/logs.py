"""Log output: plain text by default, or one JSON object per line (CAIRN_LOG_FORMAT=json)."""

import logging

from pythonjsonlogger.json import JsonFormatter

from router.observability.correlation import CorrelationFilter

_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s"
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for `text` or `json` output."""
    if log_format == "json":
        return JsonFormatter(
            _FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}
        )
    return logging.Formatter(_TEXT)


def install(handler: logging.Handler, log_format: str) -> logging.Handler:
    """Make `handler` write `log_format` records that carry the correlation id."""
    if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
        handler.addFilter(CorrelationFilter())
    handler.setFormatter(formatter(log_format))
    return handler


def configure(log_format: str) -> None:
    """Apply `log_format` to every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        install(handler, log_format)
