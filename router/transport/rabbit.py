"""Broker mode on RabbitMQ through FastStream: a relay publishes outbox rows, consumers run them.

The database stays the source of truth. The relay leases due outbox rows and publishes them
persistent, mandatory and confirmed to quorum queues (one per topic, with a delivery limit and a
dead-letter exchange). Consumers ack only after the handler's transaction committed. A message
lost anywhere (relay killed after leasing, a consumer's failure) is published again when its
lease expires, and a repeat is harmless because the Dispatcher skips messages already done.
"""

import asyncio
import logging
from contextlib import suppress
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitMessage,
    RabbitQueue,
)

from router.pipeline import Dispatcher
from router.transport.poller import Pacing, Wakeup, claim_due, release
from store.engine import Database

log = logging.getLogger("cairn.rabbit")

RELAY_BATCH = 100


class RabbitTransport:
    """Relay plus competing consumers; any number of processes may run either part."""

    mode = "rabbitmq"

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
        # prefetch_count bounds the handlers running at once; confirms make publish() wait for
        # the broker's ack; on_return_raises turns an unroutable message into an error.
        self.broker = RabbitBroker(
            url,
            default_channel=Channel(
                prefetch_count=pacing.concurrency, publisher_confirms=True, on_return_raises=True
            ),
            logger=log,
        )
        self.exchange = RabbitExchange(prefix, type=ExchangeType.DIRECT, durable=True)
        self.dead_exchange = RabbitExchange(f"{prefix}.dlx", type=ExchangeType.FANOUT, durable=True)
        self.dead_queue = RabbitQueue(f"{prefix}.dead", queue_type=QueueType.QUORUM, durable=True)
        self.queues = [
            RabbitQueue(
                f"{prefix}.{topic}",
                queue_type=QueueType.QUORUM,
                durable=True,
                routing_key=topic,
                arguments={
                    "x-delivery-limit": delivery_limit,
                    "x-dead-letter-exchange": self.dead_exchange.name,
                },
            )
            for topic in dispatcher.topics
        ]
        if consume:
            for queue in self.queues:
                self.broker.subscriber(queue, self.exchange, ack_policy=AckPolicy.MANUAL)(
                    self._consume
                )
        self._wakeup = Wakeup()
        self._relay_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"RabbitTransport(exchange={self.exchange.name!r}, consume={self.consume})"

    async def start(self) -> None:
        """Declare the topology, start consumers (if any) and the relay."""
        await self.broker.connect()
        exchange = await self.broker.declare_exchange(self.exchange)
        dead_exchange = await self.broker.declare_exchange(self.dead_exchange)
        dead_queue = await self.broker.declare_queue(self.dead_queue)
        await dead_queue.bind(dead_exchange)
        for queue in self.queues:
            declared = await self.broker.declare_queue(queue)
            await declared.bind(exchange, routing_key=queue.routing_key)
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

    def notify(self) -> None:
        """Wake the relay."""
        self._wakeup.set()

    async def problem(self) -> str | None:
        """Why the broker is not usable, or None."""
        if not await self.broker.ping(timeout=2.0):
            return "RabbitMQ is not reachable"
        if self._relay_task is None or self._relay_task.done():
            return "the outbox relay is not running"
        return None

    async def _consume(self, body: Any, message: RabbitMessage) -> None:
        # MANUAL ack: FastStream does nothing on its own, so every path acks or rejects.
        try:
            message_id = int(body["id"])
        except (TypeError, KeyError, ValueError):
            log.error("rejecting a message without an outbox id: %r", body)
            await message.reject(requeue=False)
            return
        try:
            await asyncio.to_thread(self.dispatcher.run, message_id)
        except Exception:
            # Not even the failure could be recorded (database gone). Rejecting parks this copy
            # in the dead queue instead of hot-looping; the outbox lease republishes it later.
            log.exception("message %s could not be processed; parked", message_id)
            await message.reject(requeue=False)
            return
        await message.ack()

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
                        exchange=self.exchange,
                        routing_key=message.topic,
                        persist=True,
                        mandatory=True,
                        message_id=str(message.id),
                        headers={"x-cairn-attempt": message.attempts},
                    )
                except Exception:
                    log.exception("publish failed; handing %d messages back", len(messages) - index)
                    with suppress(Exception):
                        await asyncio.to_thread(release, self.db, [m.id for m in messages[index:]])
                    await asyncio.sleep(self.pacing.poll_interval)
                    break
