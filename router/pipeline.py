"""Runs one pipeline message exactly once in effect, whichever transport delivered it."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from core.base import utcnow
from core.errors import PayloadError, TransientError, UnsupportedEventError
from router.metrics import MESSAGES
from store import outbox
from store.engine import Database

log = logging.getLogger("cairn.pipeline")

REMIND_TOPIC = "remind"
"""The topic of overdue reminders, named here because two sibling layers use it: the overdue
sweep queues them and `router.stages.remind` posts them."""


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stage handler gets: the open transaction and the time of this run."""

    session: Session
    now: datetime
    message_id: int

    def emit(self, topic: str, payload: dict[str, Any], *, key: str) -> int:
        """Queue follow-up work; it exists exactly when this stage's writes commit."""
        return outbox.enqueue(self.session, topic=topic, payload=payload, key=key, now=self.now)


Handler = Callable[[StageContext, dict[str, Any]], None]
"""A stage handler: reads its payload, writes through repositories, may emit more work."""


@dataclass(frozen=True, slots=True)
class Effect:
    """A stage that calls an outside system, between two short transactions.

    `prepare` reads what to do (None: nothing to do); `perform` makes the call with no
    transaction open (SQLite would otherwise hold its write lock for the whole call);
    `record` writes the outcome and the done-mark together. A crash after the call and before
    `record` runs it again, so `perform` must be idempotent: targets read their markers first.
    """

    prepare: Callable[[StageContext, dict[str, Any]], Any]
    perform: Callable[[Any], Any]
    record: Callable[[StageContext, Any, Any], None]


Stage = Handler | Effect
"""What a topic maps to."""


class Outcome(StrEnum):
    """What became of one delivery of a message."""

    DONE = "done"
    ALREADY_DONE = "already_done"
    RETRY = "retry"
    DEAD = "dead"


class Dispatcher:
    """Runs stage handlers: effects and the done-mark commit together, or not at all."""

    def __init__(
        self,
        db: Database,
        stages: Mapping[str, Stage],
        *,
        max_attempts: int = 8,
        count_attempts: bool = False,
    ) -> None:
        self.db = db
        self.stages = dict(stages)
        self.max_attempts = max_attempts
        # Broker consumers count each delivery here; embedded workers count when they claim.
        self.count_attempts = count_attempts

    @property
    def topics(self) -> list[str]:
        """Every topic a handler exists for."""
        return sorted(self.stages)

    def run(self, message_id: int) -> Outcome:
        """Process one message; a repeat delivery of a done message does nothing."""
        outcome = self._run(message_id)
        MESSAGES.labels(outcome.value).inc()
        return outcome

    def _run(self, message_id: int) -> Outcome:
        if self.count_attempts:
            with self.db.transaction() as session:
                refused = outbox.start_attempt(session, message_id, self.max_attempts)
            if refused == outbox.MessageStatus.DEAD:
                log.error("message %s dead-lettered: deliveries keep dying", message_id)
                return Outcome.DEAD
            if refused is not None:
                return Outcome.ALREADY_DONE
        try:
            with self.db.transaction() as session:
                message = outbox.begin(session, message_id)
                if message is None:
                    return Outcome.ALREADY_DONE
                stage = self.stages.get(message.topic)
                if stage is None:
                    raise PayloadError(f"no stage handles topic {message.topic!r}")
                now = utcnow()
                ctx = StageContext(session, now, message.id)
                if not isinstance(stage, Effect):
                    stage(ctx, message.payload)
                    outbox.complete(session, message.id, now)
                    return Outcome.DONE
                plan = stage.prepare(ctx, message.payload)
                if plan is None:
                    outbox.complete(session, message.id, now)
                    return Outcome.DONE
            result = stage.perform(plan)
            with self.db.transaction() as session:
                if outbox.begin(session, message_id) is None:
                    return Outcome.ALREADY_DONE  # another worker's retry finished it meanwhile
                now = utcnow()
                stage.record(StageContext(session, now, message_id), plan, result)
                outbox.complete(session, message_id, now)
            return Outcome.DONE
        except (PayloadError, UnsupportedEventError, DataError) as exc:
            # Retrying cannot help (a bad payload, or a value the database refuses):
            # dead-letter at once, keeping the reason.
            return self._fail(message_id, exc, max_attempts=0)
        except TransientError as exc:
            return self._fail(message_id, exc, retry_after=exc.retry_after)
        except Exception as exc:
            log.exception("message %s failed", message_id)
            return self._fail(message_id, exc)

    def _fail(
        self,
        message_id: int,
        exc: Exception,
        *,
        max_attempts: int | None = None,
        retry_after: float | None = None,
    ) -> Outcome:
        error = f"{type(exc).__name__}: {exc}"
        with self.db.transaction() as session:
            status = outbox.fail(
                session,
                message_id,
                error=error,
                now=utcnow(),
                max_attempts=self.max_attempts if max_attempts is None else max_attempts,
                retry_after=retry_after,
            )
        if status == outbox.MessageStatus.DEAD:
            log.error("message %s dead-lettered: %s", message_id, error)
            return Outcome.DEAD
        if status == outbox.MessageStatus.DONE:
            return Outcome.ALREADY_DONE
        log.warning("message %s will be retried: %s", message_id, error)
        return Outcome.RETRY
