"""Broker mode on RabbitMQ through FastStream: a relay publishes outbox rows, consumers run them.

The relay (`router.transport.broker`) publishes each due outbox row's id persistent, mandatory
and confirmed to quorum queues (one per topic, with a delivery limit and a dead-letter
exchange). Consumers ack only after the handler's transaction committed; a delivery that cannot
even record its failure is rejected into the dead queue, and the outbox lease publishes the
message again later. Fencing of redeliveries: see `router.transport.broker`.
"""

import logging
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
from router.transport.broker import RELAY_BATCH as RELAY_BATCH
from router.transport.broker import BrokerTransport
from router.transport.poller import Pacing
from store import outbox
from store.engine import Database

log = logging.getLogger("cairn.rabbit")


class RabbitTransport(BrokerTransport):
    """Relay plus competing consumers; any number of processes may run either part."""

    mode = "rabbitmq"
    broker_name = "RabbitMQ"
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

    def __repr__(self) -> str:
        return f"RabbitTransport(exchange={self.exchange.name!r}, consume={self.consume})"

    async def _declare(self) -> None:
        await self.broker.connect()
        exchange = await self.broker.declare_exchange(self.exchange)
        dead_exchange = await self.broker.declare_exchange(self.dead_exchange)
        dead_queue = await self.broker.declare_queue(self.dead_queue)
        await dead_queue.bind(dead_exchange)
        for queue in self.queues:
            declared = await self.broker.declare_queue(queue)
            await declared.bind(exchange, routing_key=queue.routing_key)

    async def _publish(self, message: outbox.Message) -> None:
        await self.broker.publish(
            {"id": message.id},
            exchange=self.exchange,
            routing_key=message.topic,
            persist=True,
            mandatory=True,
            message_id=str(message.id),
            headers={"x-cairn-attempt": message.attempts},
        )

    async def _consume(self, body: Any, message: RabbitMessage) -> None:
        # MANUAL ack: FastStream does nothing on its own, so every path acks or rejects.
        try:
            message_id = int(body["id"])
        except (TypeError, KeyError, ValueError):
            log.error("rejecting a message without an outbox id: %r", body)
            await message.reject(requeue=False)
            return
        if not await self._handle(message_id):
            # Not even the failure could be recorded (database gone). Rejecting parks this copy
            # in the dead queue instead of hot-looping; the outbox lease republishes it later.
            await message.reject(requeue=False)
            return
        await message.ack()
