"""Broker mode on RabbitMQ through FastStream: a relay publishes outbox rows, consumers run them.

The database stays the source of truth. The relay leases due outbox rows and publishes them
persistent, mandatory and confirmed to quorum queues (one per topic, with a delivery limit and a
dead-letter exchange). Consumers ack only after the handler's transaction committed. A message
lost anywhere (relay killed after leasing, a consumer's failure) is published again when its
lease expires, and a repeat is harmless because the Dispatcher skips messages already done.

A redelivery never runs beside its first handling: a closed connection cancels the consumer
but not the handler's thread, so this process keeps the runs it started and a copy of one of
them waits for it; across processes the run token on the outbox row refuses the copy while
the first run's lease (renewed as it runs) lasts.
"""

import asyncio
import functools
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

from router.pipeline import Dispatcher, Outcome
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
        # Runs started by this process, by outbox id, until their thread returns.
        self._running: dict[int, asyncio.Future[Outcome]] = {}

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
        """Stop the relay, then the consumers, then wait for handlers still running.

        The wait is bounded by one lease: a run still going then keeps renewing its lease
        while this process lives; once the process exits, the lease lapses and the message is
        published again.
        """
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
        first = self._running.get(message_id)
        if first is not None:
            # The broker delivered again while this process still runs the first copy (its
            # channel closed under it): wait for that run instead of starting a second one.
            log.info("message %s delivered again while its first run goes on; waiting", message_id)
            await asyncio.wait([first])
        try:
            await self._run(message_id)
        except Exception:
            # Not even the failure could be recorded (database gone). Rejecting parks this copy
            # in the dead queue instead of hot-looping; the outbox lease republishes it later.
            log.exception("message %s could not be processed; parked", message_id)
            await message.reject(requeue=False)
            return
        await message.ack()

    async def _run(self, message_id: int) -> Outcome:
        """Run the message in a thread that this process tracks until it returns.

        Cancelling this coroutine (the connection closed) does not stop the thread, so the run
        stays in `_running` until the thread itself ends.
        """
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
