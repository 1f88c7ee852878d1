"""Stage instrumentation: each run gets its message's correlation id, a span and a timing.

Wraps the stage table the Dispatcher runs, so the pipeline itself stays unaware: a handler
(or an effect's prepare, perform and record) runs with the correlation id on the context
variable and inside a span whose parent is the trace context its message carried, and every
message it emits carries both on.
"""

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from router.metrics import MESSAGE_AGE, STAGE_SECONDS
from router.observability import tracing
from router.observability.correlation import TRACE_KEY, bound, current, split
from router.pipeline import Effect, Handler, Stage, StageContext

log = logging.getLogger("cairn.stage")
CORRELATION = "correlation_id"


def stamp(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload` carrying the current correlation id and trace context (unchanged if neither)."""
    trace: dict[str, str] = tracing.carrier()
    correlation_id = current()
    if correlation_id is not None:
        trace[CORRELATION] = correlation_id
    return {**payload, TRACE_KEY: trace} if trace else payload


@dataclass(frozen=True, slots=True)
class TracedContext(StageContext):
    """A StageContext whose emitted messages carry the correlation id and trace context on."""

    def emit(self, topic: str, payload: dict[str, Any], *, key: str) -> int:
        """Queue follow-up work, stamped."""
        return StageContext.emit(self, topic, stamp(payload), key=key)


@dataclass(frozen=True, slots=True)
class _Carried:
    """An effect's plan with the trace fields of the message it came from."""

    plan: Any
    trace: Mapping[str, str]


def _traced(ctx: StageContext) -> TracedContext:
    return TracedContext(**{f.name: getattr(ctx, f.name) for f in fields(ctx)})


def _observe_age(ctx: StageContext, topic: str) -> None:
    if ctx.enqueued_at is not None:
        MESSAGE_AGE.labels(topic).observe(max(0.0, (ctx.now - ctx.enqueued_at).total_seconds()))


@contextmanager
def _phase(topic: str, phase: str, trace: Mapping[str, str]) -> Iterator[None]:
    correlation_id = trace.get(CORRELATION)
    attributes = {"cairn.topic": topic, "cairn.phase": phase}
    if correlation_id is not None:
        attributes["cairn.correlation_id"] = correlation_id
    started = time.perf_counter()
    with bound(correlation_id), tracing.span(f"cairn.{topic} {phase}", trace, attributes):
        try:
            yield
        finally:
            took = time.perf_counter() - started
            STAGE_SECONDS.labels(topic, phase).observe(took)
            log.debug("stage %s %s took %.3f s", topic, phase, took)


def _handler(topic: str, handler: Handler) -> Handler:
    def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
        body, trace = split(payload)
        _observe_age(ctx, topic)
        with _phase(topic, "handle", trace):
            handler(_traced(ctx), body)

    return handle


def _effect(topic: str, effect: Effect) -> Effect:
    def prepare(ctx: StageContext, payload: dict[str, Any]) -> _Carried | None:
        body, trace = split(payload)
        _observe_age(ctx, topic)
        with _phase(topic, "prepare", trace):
            plan = effect.prepare(_traced(ctx), body)
        return None if plan is None else _Carried(plan, trace)

    def perform(carried: _Carried) -> Any:
        with _phase(topic, "perform", carried.trace):
            return effect.perform(carried.plan)

    def record(ctx: StageContext, carried: _Carried, result: Any) -> None:
        with _phase(topic, "record", carried.trace):
            effect.record(_traced(ctx), carried.plan, result)

    return Effect(prepare=prepare, perform=perform, record=record)


def instrument(stages: Mapping[str, Stage]) -> dict[str, Stage]:
    """The stage table with every stage instrumented."""
    return {
        topic: _effect(topic, stage) if isinstance(stage, Effect) else _handler(topic, stage)
        for topic, stage in stages.items()
    }
