"""OpenTelemetry tracing, off unless an exporter is configured (CAIRN_OTLP_ENDPOINT).

One trace follows a delivery: the HTTP request that accepted it, then every stage of every
message it caused, down to the write in the target. The trace context rides in each message's
payload next to the correlation id, so it crosses the outbox and the broker alike. The
OpenTelemetry packages are the optional `otel` extra; nothing imports them while tracing is off.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE = "cairn"
_NOT_TRACED = "healthz,readyz,metrics"
_provider: TracerProvider | None = None


def start(exporter: SpanExporter, *, batch: bool = True) -> TracerProvider:
    """Trace from now on, sending finished spans to `exporter` (in batches unless `batch=False`)."""
    global _provider
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError("tracing needs the otel extra: pip install 'cairn[otel]'") from exc
    stop()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _provider = provider
    return provider


def start_otlp(endpoint: str) -> TracerProvider:
    """Trace to an OTLP/HTTP collector at `endpoint` (OTEL_EXPORTER_OTLP_* still apply)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            "CAIRN_OTLP_ENDPOINT needs the otel extra: pip install 'cairn[otel]'"
        ) from exc
    return start(OTLPSpanExporter(endpoint=endpoint))


def stop() -> None:
    """Flush and stop tracing (nothing happens when it is off)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def enabled() -> bool:
    """Whether spans are being recorded."""
    return _provider is not None


def instrument_app(app: FastAPI) -> None:
    """Trace the app's HTTP requests (health and metrics excepted), when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, excluded_urls=_NOT_TRACED)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), empty when tracing is off."""
    if _provider is None:
        return {}
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def span(name: str, parent: Mapping[str, str], attributes: Mapping[str, str]) -> Iterator[None]:
    """Run a block in a span whose parent is the context in `parent` (a no-op when off)."""
    if _provider is None:
        yield
        return
    from opentelemetry import propagate

    tracer = _provider.get_tracer("cairn")
    with tracer.start_as_current_span(
        name, context=propagate.extract(dict(parent)), attributes=dict(attributes)
    ):
        yield
