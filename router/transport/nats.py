"""Broker mode on NATS JetStream through FastStream: the same relay and consumers as RabbitMQ.

Chosen by `CAIRN_BROKER_URL=nats://…`. The database stays the source of truth, exactly as in
`router.transport.rabbit`: a relay leases due outbox rows and publishes their ids to a
JetStream stream (file storage, work-queue retention: a message leaves the stream when it is
acknowledged), awaiting the server's publish acknowledgement; one durable pull consumer per
topic is shared by every process (competing consumers), acknowledges explicitly, and only after
the handler's transaction committed. The guarantees carried over:

- **Durable**: the stream is on disk; a message whose consumer died unacknowledged is delivered
  again after `ack_wait`, and one lost anywhere is published again by the relay when its outbox
  lease expires.
- **No second run while the first runs**: a handler in progress tells the server so every third
  of `ack_wait` (`in_progress`), so a slow target write is not redelivered meanwhile; should a
  copy come anyway (a lost connection), the outbox row's run token refuses it while the first
  run's lease lasts, and in this process it waits for the first run.
- **Redelivery limit**: the consumer stops after `max_deliver` deliveries, and the dispatcher
  dead-letters a message in the outbox once its attempts are spent (`cairn queue dead`).
- **Dead letters**: a delivery that cannot even record its failure (the database is gone) is
  copied to `<prefix>.dead` (a stream of its own, kept for `DEAD_DAYS`) and terminated; the
  outbox lease publishes the message again later, as RabbitMQ's dead-letter exchange does.
"""

import asyncio
import functools
import logging
from contextlib import suppress
from typing import Any

from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from nats.js.api import RetentionPolicy, StorageType
from nats.js.errors import BadRequestError

from router.pipeline import Dispatcher, Outcome
from router.transport.poller import Pacing, Wakeup, claim_due, release
from store.engine import Database

log = logging.getLogger("cairn.nats")

RELAY_BATCH = 100
DEAD_DAYS = 14
WORK_DAYS = 7
"""How long an undeliverable message may stay in the work stream (past the redelivery limit the
server keeps it without delivering it; the outbox holds the truth either way)."""


def stream_name(prefix: str) -> str:
    """A JetStream stream name from the prefix (no dots, spaces or wildcards)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in prefix) or "cairn"


class NatsTransport:
    """Relay plus competing pull consumers on JetStream; any number of processes may run
    either part."""

    mode = "nats"

    def __init__(
        self,
        url: str,
        db: Database,
        dispatcher: Dispatcher,
        pacing: Pacing,
        *,
        prefix: str,
        delivery_limit: int,
        consume: bool = True,
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.pacing = pacing
        self.consume = consume
        self.prefix = prefix
        self.broker = NatsBroker(url, logger=log)
        name = stream_name(prefix)
        self.stream = JStream(
            name,
            subjects=[f"{prefix}.{topic}" for topic in dispatcher.topics],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            max_age=WORK_DAYS * 86400.0,
        )
        self.dead_stream = JStream(
            f"{name}_dead",
            subjects=[f"{prefix}.dead"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=DEAD_DAYS * 86400.0,
        )
        # The server redelivers an unacknowledged message after ack_wait; a live handler keeps
        # pushing that back (`_heartbeat`), so ack_wait bounds only how long a dead one holds it.
        self.ack_wait = max(5.0, min(pacing.lease_seconds, 60.0))
        if consume:
            for topic in dispatcher.topics:
                self.broker.subscriber(
                    f"{prefix}.{topic}",
                    stream=self.stream,
                    durable=f"{name}-{topic}",
                    pull_sub=PullSub(batch_size=pacing.concurrency, timeout=2.0),
                    max_workers=max(pacing.concurrency, 2),
                    config=ConsumerConfig(ack_wait=self.ack_wait, max_deliver=delivery_limit),
                    ack_policy=AckPolicy.MANUAL,
                )(self._consume)
        self._wakeup = Wakeup()
        self._relay_task: asyncio.Task[None] | None = None
        # Runs started by this process, by outbox id, until their thread returns.
        self._running: dict[int, asyncio.Future[Outcome]] = {}

    def __repr__(self) -> str:
        return f"NatsTransport(stream={self.stream.name!r}, consume={self.consume})"

    async def start(self) -> None:
        """Declare the streams, start consumers (if any) and the relay."""
        await self.broker.connect()
        work = [f"{self.prefix}.{topic}" for topic in self.dispatcher.topics]
        await _declare(self.broker, self.stream, work)
        await _declare(self.broker, self.dead_stream, [f"{self.prefix}.dead"])
        await self.broker.start()
        self._relay_task = asyncio.create_task(self._relay(), name="cairn-relay")

    async def stop(self) -> None:
        """Stop the relay, then the consumers (waiting for handlers in flight)."""
        if self._relay_task is not None:
            self._relay_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._relay_task
            self._relay_task = None
        await self.broker.stop()
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=self.pacing.lease_seconds)

    def notify(self) -> None:
        """Wake the relay."""
        self._wakeup.set()

    async def problem(self) -> str | None:
        """Why the broker is not usable, or None."""
        if not await self.broker.ping(timeout=2.0):
            return "NATS is not reachable"
        if self._relay_task is None or self._relay_task.done():
            return "the outbox relay is not running"
        return None

    async def _consume(self, body: Any, message: NatsMessage) -> None:
        # MANUAL ack: every path acks, terminates or leaves the message to ack_wait.
        try:
            message_id = int(body["id"])
        except (TypeError, KeyError, ValueError):
            log.error("terminating a message without an outbox id: %r", body)
            await self._dead(body, "no outbox id")
            await message.reject()
            return
        first = self._running.get(message_id)
        if first is not None:
            # Delivered again while this process still runs the first copy: wait for that run
            # instead of starting a second one (the run token refuses it anyway).
            log.info("message %s delivered again while its first run goes on; waiting", message_id)
            await asyncio.wait([first])
        beat = asyncio.create_task(self._heartbeat(message), name=f"cairn-beat-{message_id}")
        try:
            await self._run(message_id)
        except Exception:
            # Not even the failure could be recorded (database gone): park a copy with the dead
            # letters and end this delivery; the outbox lease publishes the message again later.
            log.exception("message %s could not be processed; parked", message_id)
            await self._dead(body, "the handler could not record its outcome")
            await message.reject()
            return
        finally:
            beat.cancel()
            with suppress(asyncio.CancelledError):
                await beat
        await message.ack()

    async def _run(self, message_id: int) -> Outcome:
        """Run the message in a thread this process tracks until it returns (a cancelled
        consumer does not stop the thread, so the run stays known until it ends)."""
        future = asyncio.get_running_loop().run_in_executor(
            None,
            functools.partial(
                self.dispatcher.run, message_id, lease_seconds=self.pacing.lease_seconds
            ),
        )
        self._running[message_id] = future

        def finished(done: asyncio.Future[Outcome]) -> None:
            if self._running.get(message_id) is done:
                del self._running[message_id]
            if not done.cancelled():
                done.exception()  # observed here: the consumer awaiting it may be cancelled

        future.add_done_callback(finished)
        return await asyncio.shield(future)

    async def _heartbeat(self, message: NatsMessage) -> None:
        while True:
            await asyncio.sleep(self.ack_wait / 3)
            with suppress(Exception):
                await message.in_progress()

    async def _dead(self, body: Any, why: str) -> None:
        with suppress(Exception):
            await self.broker.publish(
                body if isinstance(body, dict) else {"body": repr(body)[:2000]},
                f"{self.prefix}.dead",
                stream=self.dead_stream.name,
                headers={"x-cairn-dead": why},
            )

    async def _relay(self) -> None:
        while True:
            try:
                messages = await asyncio.to_thread(
                    claim_due, self.db, self.pacing, RELAY_BATCH, for_relay=True
                )
            except Exception:
                log.exception("relay could not read the outbox")
                await asyncio.sleep(self.pacing.poll_interval)
                continue
            if not messages:
                await self._wakeup.wait(self.pacing.poll_interval)
                continue
            for index, message in enumerate(messages):
                try:
                    await self.broker.publish(
                        {"id": message.id},
                        f"{self.prefix}.{message.topic}",
                        stream=self.stream.name,
                        headers={"x-cairn-attempt": str(message.attempts)},
                    )
                except Exception:
                    log.exception("publish failed; handing %d messages back", len(messages) - index)
                    with suppress(Exception):
                        await asyncio.to_thread(release, self.db, [m.id for m in messages[index:]])
                    await asyncio.sleep(self.pacing.poll_interval)
                    break


async def _declare(broker: NatsBroker, stream: JStream, subjects: list[str]) -> None:
    """Create the stream, or bring an existing one's settings in step (a new topic)."""
    js = broker.config.connection_state.stream
    try:
        await js.add_stream(config=stream.config, subjects=subjects)
    except BadRequestError:
        await js.update_stream(config=stream.config, subjects=subjects)
