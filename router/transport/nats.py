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
import logging
from contextlib import suppress
from typing import Any

from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, NatsMessage, PullSub
from nats.js.api import RetentionPolicy, StorageType
from nats.js.errors import BadRequestError

from router.pipeline import Dispatcher
from router.transport.broker import BrokerTransport
from router.transport.poller import Pacing
from store import outbox
from store.engine import Database

log = logging.getLogger("cairn.nats")

DEAD_DAYS = 14
WORK_DAYS = 7
"""How long an undeliverable message may stay in the work stream (past the redelivery limit the
server keeps it without delivering it; the outbox holds the truth either way)."""


def stream_name(prefix: str) -> str:
    """A JetStream stream name from the prefix (no dots, spaces or wildcards)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in prefix) or "cairn"


class NatsTransport(BrokerTransport):
    """Relay plus competing pull consumers on JetStream; any number of processes may run
    either part."""

    mode = "nats"
    broker_name = "NATS"
    log = log

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
        super().__init__(db, dispatcher, pacing, consume=consume)
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
                    # One message per pull: nats-py's batch fetch, once a first message came,
                    # waits out the whole timeout for the rest of the batch, so at low traffic
                    # every hop took up to 2 s. `max_workers` handles messages side by side.
                    pull_sub=PullSub(batch_size=1, timeout=2.0),
                    max_workers=max(pacing.concurrency, 2),
                    config=ConsumerConfig(ack_wait=self.ack_wait, max_deliver=delivery_limit),
                    ack_policy=AckPolicy.MANUAL,
                )(self._consume)

    def __repr__(self) -> str:
        return f"NatsTransport(stream={self.stream.name!r}, consume={self.consume})"

    async def _declare(self) -> None:
        await self.broker.connect()
        work = [f"{self.prefix}.{topic}" for topic in self.dispatcher.topics]
        await _declare(self.broker, self.stream, work)
        await _declare(self.broker, self.dead_stream, [f"{self.prefix}.dead"])

    async def _publish(self, message: outbox.Message) -> None:
        await self.broker.publish(
            {"id": message.id},
            f"{self.prefix}.{message.topic}",
            stream=self.stream.name,
            headers={"x-cairn-attempt": str(message.attempts)},
        )

    async def _consume(self, body: Any, message: NatsMessage) -> None:
        # MANUAL ack: every path acks, terminates or leaves the message to ack_wait.
        try:
            message_id = int(body["id"])
        except (TypeError, KeyError, ValueError):
            log.error("terminating a message without an outbox id: %r", body)
            await self._dead(body, "no outbox id")
            await message.reject()
            return
        beat = asyncio.create_task(self._heartbeat(message), name=f"cairn-beat-{message_id}")
        try:
            handled = await self._handle(message_id)
        finally:
            beat.cancel()
            with suppress(asyncio.CancelledError):
                await beat
        if not handled:
            # Not even the failure could be recorded (database gone): park a copy with the dead
            # letters and end this delivery; the outbox lease publishes the message again later.
            await self._dead(body, "the handler could not record its outcome")
            await message.reject()
            return
        await message.ack()

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


async def _declare(broker: NatsBroker, stream: JStream, subjects: list[str]) -> None:
    """Create the stream, or bring an existing one's settings in step (a new topic)."""
    js = broker.config.connection_state.stream
    try:
        await js.add_stream(config=stream.config, subjects=subjects)
    except BadRequestError:
        await js.update_stream(config=stream.config, subjects=subjects)
