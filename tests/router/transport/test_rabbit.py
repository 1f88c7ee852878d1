"""The RabbitMQ transport against the real server: topology, persistence, dead-lettering, flow."""

import asyncio
import json
import subprocess
from typing import Any

import aio_pika
import pytest

from core.base import utcnow
from router.pipeline import Dispatcher, StageContext
from router.transport.poller import Pacing
from router.transport.rabbit import RabbitTransport
from store import audit, outbox
from store.engine import Database

pytestmark = [pytest.mark.rabbit]


def _record(ctx: StageContext, payload: dict[str, Any]) -> None:
    audit.record(
        ctx.session, actor="test", action="seen", subject=str(payload["n"]), details={}, now=ctx.now
    )


def _transport(url: str, db: Database, rabbit_prefix: str, *, consume: bool) -> RabbitTransport:
    dispatcher = Dispatcher(db, {"inbound": _record}, max_attempts=3)
    pacing = Pacing(concurrency=4, poll_interval=0.05, lease_seconds=30, max_attempts=3)
    return RabbitTransport(
        url, db, dispatcher, pacing, prefix=rabbit_prefix, delivery_limit=5, consume=consume
    )


def _arguments(raw: Any) -> dict[str, Any]:
    """rabbitmqctl's JSON gives queue arguments as [name, type, value] triples."""
    return raw if isinstance(raw, dict) else {item[0]: item[-1] for item in raw}


def _enqueue(db: Database, count: int) -> list[int]:
    with db.transaction() as session:
        return [
            outbox.enqueue(session, topic="inbound", payload={"n": n}, key=str(n), now=utcnow())
            for n in range(count)
        ]


async def _until(predicate: Any, seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():
            await asyncio.sleep(0.05)


def test_topology_is_durable_quorum_with_delivery_limit_and_dead_letter(
    rabbit_url: str, sqlite_db: Database, rabbit_prefix: str
) -> None:
    async def scenario() -> None:
        transport = _transport(rabbit_url, sqlite_db, rabbit_prefix, consume=False)
        await transport.start()
        await transport.stop()

    asyncio.run(scenario())
    listed = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "name",
            "type",
            "durable",
            "arguments",
            "--formatter",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    queues = {q["name"]: q for q in json.loads(listed.stdout)}
    work, dead = queues[f"{rabbit_prefix}.inbound"], queues[f"{rabbit_prefix}.dead"]
    assert work["type"] == "quorum" and work["durable"] is True
    arguments = _arguments(work["arguments"])
    assert arguments["x-delivery-limit"] == 5, work
    assert arguments["x-dead-letter-exchange"] == f"{rabbit_prefix}.dlx", work
    assert dead["type"] == "quorum" and dead["durable"] is True


def test_relay_publishes_persistent_messages_with_the_outbox_id(
    rabbit_url: str, sqlite_db: Database, rabbit_prefix: str
) -> None:
    ids = _enqueue(sqlite_db, 3)

    async def scenario() -> list[aio_pika.abc.AbstractIncomingMessage]:
        transport = _transport(rabbit_url, sqlite_db, rabbit_prefix, consume=False)
        await transport.start()
        got = []
        async with await aio_pika.connect(rabbit_url) as connection:
            channel = await connection.channel()
            queue = await channel.get_queue(f"{rabbit_prefix}.inbound", ensure=False)

            async def three() -> bool:
                message = await queue.get(fail=False, no_ack=True)
                if message is not None:
                    got.append(message)
                return len(got) >= 3

            await _until(three)
        await transport.stop()
        return got

    messages = asyncio.run(scenario())
    assert [m.delivery_mode for m in messages] == [aio_pika.DeliveryMode.PERSISTENT] * 3
    assert sorted(int(m.message_id or 0) for m in messages) == ids
    assert sorted(json.loads(m.body)["id"] for m in messages) == ids
    with sqlite_db.transaction() as session:
        assert outbox.counts(session)["leased"] == 3  # published, not yet done


def test_consumers_process_each_message_once(
    rabbit_url: str, db: Database, rabbit_prefix: str
) -> None:
    _enqueue(db, 50)

    async def scenario() -> None:
        transport = _transport(rabbit_url, db, rabbit_prefix, consume=True)
        await transport.start()
        assert await transport.problem() is None

        async def drained() -> bool:
            with db.transaction() as session:
                return outbox.counts(session)["done"] == 50

        await _until(drained)
        await transport.stop()
        assert await transport.problem() == "RabbitMQ is not reachable"

    asyncio.run(scenario())
    with db.transaction() as session:
        seen = audit.entries(session, action="seen")
    assert sorted(int(e.subject) for e in seen) == list(range(50))


def test_a_message_without_an_outbox_id_is_parked_in_the_dead_queue(
    rabbit_url: str, sqlite_db: Database, rabbit_prefix: str
) -> None:
    async def scenario() -> aio_pika.abc.AbstractIncomingMessage:
        transport = _transport(rabbit_url, sqlite_db, rabbit_prefix, consume=True)
        await transport.start()
        await transport.broker.publish(
            {"not": "an outbox message"},
            exchange=transport.exchange,
            routing_key="inbound",
            persist=True,
            mandatory=True,
        )
        parked: list[aio_pika.abc.AbstractIncomingMessage] = []
        async with await aio_pika.connect(rabbit_url) as connection:
            channel = await connection.channel()
            dead = await channel.get_queue(f"{rabbit_prefix}.dead", ensure=False)

            async def arrived() -> bool:
                message = await dead.get(fail=False, no_ack=True)
                if message is not None:
                    parked.append(message)
                return bool(parked)

            await _until(arrived)
        await transport.stop()
        return parked[0]

    message = asyncio.run(scenario())
    assert json.loads(message.body) == {"not": "an outbox message"}
    assert message.headers["x-death"][0]["reason"] == "rejected"  # type: ignore[index]
