"""Runs one pipeline message exactly once in effect, whichever transport delivered it."""

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    enqueued_at: datetime | None = None
    """When the message was queued (None in an effect's `record` phase)."""

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
    BUSY = "busy"
    """Another delivery holds the message: it is still running, or took over after this
    delivery's lease lapsed. This delivery changed nothing."""


@dataclass(eq=False, slots=True)
class Run:
    """One run holding a message with a lease (see `LongRuns`)."""

    message_id: int
    token: str
    lease: timedelta
    renew_at: float
    """When (monotonic) the run needs its first renewal: a third of its lease after it began."""
    ended: threading.Event = field(default_factory=threading.Event)
    renewing: bool = False


class LongRuns:
    """Gives a run a lease-renewing thread of its own once it has lasted a third of its lease.

    Most runs end in milliseconds, long before a renewal is due, and start no thread. One
    watcher thread notices the runs that last and starts a renewer for each; the watcher never
    touches the database, so a renewal waiting on a row lock holds up only its own run.
    """

    def __init__(self, renew: Callable[[Run], None]) -> None:
        self._renew = renew
        self._lock = threading.Lock()
        self._runs: set[Run] = set()
        self._wake = threading.Event()
        self._next_look = float("inf")
        self._watcher: threading.Thread | None = None

    def add(self, message_id: int, token: str, lease: timedelta) -> Run:
        """Watch a run that starts now."""
        run = Run(message_id, token, lease, time.monotonic() + lease.total_seconds() / 3)
        with self._lock:
            self._runs.add(run)
            if self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="cairn-lease-watch", daemon=True
                )
                self._watcher.start()
            if run.renew_at < self._next_look:
                self._next_look = run.renew_at
                self._wake.set()
        return run

    def remove(self, run: Run) -> None:
        """The run ended: stop watching it, and stop its renewer if it has one."""
        run.ended.set()
        with self._lock:
            self._runs.discard(run)

    def _watch(self) -> None:
        while True:
            now = time.monotonic()
            with self._lock:
                for run in self._runs:
                    if not run.renewing and run.renew_at <= now:
                        run.renewing = True
                        # Not joined: a renewal landing after the run ended matches no leased
                        # row with this token, so it changes nothing.
                        threading.Thread(
                            target=self._renew,
                            args=(run,),
                            name=f"cairn-lease-{run.message_id}",
                            daemon=True,
                        ).start()
                waiting = [run.renew_at for run in self._runs if not run.renewing]
                self._next_look = min(waiting, default=now + 1.0)
                self._wake.clear()
                pause = self._next_look - now
            self._wake.wait(max(pause, 0.0))


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
        self._long_runs = LongRuns(self._renew)

    def _renew(self, run: "Run") -> None:
        """A long run's renewer: renew at once (a third of the lease has passed), then every
        third of the lease, until the run ends or the message is no longer this run's."""
        period = run.lease.total_seconds() / 3
        while not run.ended.is_set():
            try:
                with self.db.transaction() as session:
                    held = outbox.extend(session, run.message_id, run.token, utcnow() + run.lease)
            except Exception:
                log.warning("could not renew the lease of message %s", run.message_id)
            else:
                if not held:
                    return
            if run.ended.wait(period):
                return

    @property
    def topics(self) -> list[str]:
        """Every topic a handler exists for."""
        return sorted(self.stages)

    def run(
        self, message_id: int, *, token: str | None = None, lease_seconds: float = 30.0
    ) -> Outcome:
        """Process one message; a repeat delivery of a done message does nothing.

        The run holds the message with a run token: a worker passes its claim's `token`; a
        broker delivery (`count_attempts`) takes one when it starts, and does not run while
        another delivery holds a live lease. The lease (`lease_seconds`) is renewed while the
        run lasts, so it lapses only when the process running it dies or hangs.
        """
        outcome = self._run(message_id, token, timedelta(seconds=lease_seconds))
        MESSAGES.labels(outcome.value).inc()
        return outcome

    def _run(self, message_id: int, token: str | None, lease: timedelta) -> Outcome:
        if self.count_attempts:
            token = token or outbox.new_token()
            refused = self._start(message_id, token, lease)
            if refused == outbox.MessageStatus.DEAD:
                log.error("message %s dead-lettered: deliveries keep dying", message_id)
                return Outcome.DEAD
            if refused == outbox.MessageStatus.LEASED:
                log.info("message %s is still running in another delivery; not run", message_id)
                return Outcome.BUSY
            if refused is not None:
                return Outcome.ALREADY_DONE
        if token is None:
            return self._attempt(message_id, None)
        with self._renewing(message_id, token, lease):
            return self._attempt(message_id, token)

    def _start(self, message_id: int, token: str, lease: timedelta) -> outbox.MessageStatus | None:
        """Count a broker delivery's attempt and take the message: None when it may run, else
        why not. The count commits before the run, so a delivery that kills its process still
        counts. One statement usually does it; when it cannot, `start_attempt` says why."""
        now, limit = utcnow(), self.max_attempts
        with self.db.one_statement() as connection:
            if outbox.take(connection, message_id, limit, token=token, now=now, lease=lease):
                return None
        with self.db.transaction() as session:
            return outbox.start_attempt(
                session, message_id, limit, token=token, now=now, lease=lease
            )

    @contextmanager
    def _renewing(self, message_id: int, token: str, lease: timedelta) -> Iterator[None]:
        """Keep this run's lease while it lasts: from a third of the lease on, a thread of its
        own renews it every third of the lease until the run ends (or loses the message)."""
        run = self._long_runs.add(message_id, token, lease)
        try:
            yield
        finally:
            self._long_runs.remove(run)

    def _attempt(self, message_id: int, token: str | None) -> Outcome:
        try:
            with self.db.transaction() as session:
                message = outbox.begin(session, message_id, token)
                if message is None:
                    return self._refused(session, message_id, token)
                stage = self.stages.get(message.topic)
                if stage is None:
                    raise PayloadError(f"no stage handles topic {message.topic!r}")
                now = utcnow()
                ctx = StageContext(session, now, message.id, message.created_at)
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
                if outbox.begin(session, message_id, token) is None:
                    # Another delivery finished it, or took it over after this run's lease
                    # lapsed: that delivery records, this one does not write over it.
                    return self._refused(session, message_id, token)
                now = utcnow()
                stage.record(StageContext(session, now, message_id), plan, result)
                outbox.complete(session, message_id, now)
            return Outcome.DONE
        except (PayloadError, UnsupportedEventError, DataError) as exc:
            # Retrying cannot help (a bad payload, or a value the database refuses):
            # dead-letter at once, keeping the reason.
            return self._fail(message_id, token, exc, max_attempts=0)
        except TransientError as exc:
            return self._fail(message_id, token, exc, retry_after=exc.retry_after)
        except Exception as exc:
            log.exception("message %s failed", message_id)
            return self._fail(message_id, token, exc)

    @staticmethod
    def _refused(session: Session, message_id: int, token: str | None) -> Outcome:
        """Why `begin` refused: another delivery holds the message now, or it is settled."""
        if token is not None and outbox.begin(session, message_id) is not None:
            log.warning("message %s lost its lease to another delivery; not recorded", message_id)
            return Outcome.BUSY
        return Outcome.ALREADY_DONE

    def _fail(
        self,
        message_id: int,
        token: str | None,
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
                token=token,
            )
        if status == outbox.MessageStatus.LEASED:
            log.warning("message %s failed after another delivery took it over", message_id)
            return Outcome.BUSY
        if status == outbox.MessageStatus.DEAD:
            log.error("message %s dead-lettered: %s", message_id, error)
            return Outcome.DEAD
        if status == outbox.MessageStatus.DONE:
            return Outcome.ALREADY_DONE
        log.warning("message %s will be retried: %s", message_id, error)
        return Outcome.RETRY
