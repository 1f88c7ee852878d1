"""The RabbitMQ transport against the real server: topology, persistence, dead-lettering, flow,
and the fence that keeps a redelivered message from running beside its first handling."""

import asyncio
import json
import logging
import subprocess
import threading
from datetime import timedelta
from typing import Any

import aio_pika
import pytest

from core.base import utcnow
from router.metrics import REGISTRY
from router.pipeline import Dispatcher, Effect, StageContext
from router.transport.poller import Pacing
from router.transport.rabbit import RabbitTransport
from store import audit, outbox
from store.engine import Database
from store.tables import OutboxRow

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


# --- a redelivery never runs beside its first handling -----------------------------------------


class Embed:
    """An Effect like an embed in flight: `perform` blocks until released and counts its calls."""

    def __init__(self) -> None:
        self.performed: list[int] = []
        self.release = threading.Event()

    def effect(self) -> Effect:
        def prepare(ctx: StageContext, payload: dict[str, Any]) -> Any:
            return payload["n"]

        def perform(plan: Any) -> Any:
            self.performed.append(plan)
            if not self.release.wait(60):
                raise TimeoutError("the embed was never released")
            return plan

        def record(ctx: StageContext, plan: Any, result: Any) -> None:
            audit.record(
                ctx.session,
                actor="test",
                action="embedded",
                subject=str(result),
                details={},
                now=ctx.now,
            )

        return Effect(prepare=prepare, perform=perform, record=record)


def _embedding(
    url: str, db: Database, rabbit_prefix: str, embed: Embed, *, lease_seconds: float = 1.0
) -> RabbitTransport:
    """A broker-mode process (deliveries count attempts and take a run token), short leases."""
    dispatcher = Dispatcher(db, {"inbound": embed.effect()}, max_attempts=5, count_attempts=True)
    pacing = Pacing(
        concurrency=4,
        poll_interval=0.05,
        lease_seconds=lease_seconds,
        max_attempts=5,
        republish_seconds=60,
    )
    return RabbitTransport(url, db, dispatcher, pacing, prefix=rabbit_prefix, delivery_limit=5)


async def _drop_connection(transport: RabbitTransport) -> None:
    """Close this transport's own AMQP connection under it, as a network fault would: the
    robust connection reconnects and the broker redelivers what was unacknowledged."""
    robust = transport.broker._connection
    assert robust is not None and robust.transport is not None
    await robust.transport.connection.close(ConnectionResetError("connection dropped"))


def _outcomes(outcome: str) -> float:
    return REGISTRY.get_sample_value("cairn_pipeline_messages_total", {"outcome": outcome}) or 0.0


def _row(db: Database, message_id: int) -> tuple[str, int]:
    with db.transaction() as session:
        row = session.get(OutboxRow, message_id)
        assert row is not None
        return row.status, row.attempts


async def _left_in_queue(url: str, rabbit_prefix: str) -> int:
    """Copies the broker still holds (ready, or unacknowledged by a consumer now gone)."""
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{rabbit_prefix}.inbound", ensure=False)
        left = 0
        while await queue.get(fail=False, no_ack=True) is not None:
            left += 1
        return left


def _embedded_once(db: Database, embed: Embed, message_id: int) -> None:
    assert embed.performed == [0]  # the target write happened exactly once
    assert _row(db, message_id) == ("done", 1)
    with db.transaction() as session:
        assert [e.subject for e in audit.entries(session, action="embedded")] == ["0"]


def test_a_redelivery_after_a_dropped_connection_waits_for_the_embed_in_flight(
    rabbit_url: str, db: Database, rabbit_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cairn.rabbit")
    embed = Embed()
    [message_id] = _enqueue(db, 1)

    def redelivered() -> bool:
        return any(
            r.name == "cairn.rabbit" and "delivered again" in str(r.msg) for r in caplog.records
        )

    async def scenario() -> int:
        transport = _embedding(rabbit_url, db, rabbit_prefix, embed)
        await transport.start()
        try:
            await _until(lambda: _now(bool(embed.performed)))
            await _drop_connection(transport)
            # The reconnected consumer gets the unacknowledged message again; without a fence
            # it would start a second embed here.
            await _until(lambda: _now(redelivered() or len(embed.performed) > 1), 60)
            await asyncio.sleep(3 * transport.pacing.lease_seconds)  # leases renewed meanwhile
            embed.release.set()
            await _until(lambda: _now(_row(db, message_id)[0] == "done"))
        finally:
            embed.release.set()
            await transport.stop()
        return await _left_in_queue(rabbit_url, rabbit_prefix)

    assert asyncio.run(scenario()) == 0  # the redelivered copy was acknowledged
    _embedded_once(db, embed, message_id)


def test_another_process_acknowledges_a_redelivery_without_running_it(
    rabbit_url: str, db: Database, rabbit_prefix: str
) -> None:
    embed = Embed()
    [message_id] = _enqueue(db, 1)
    busy_before = _outcomes("busy")

    async def scenario() -> int:
        first = _embedding(rabbit_url, db, rabbit_prefix, embed)
        second = _embedding(rabbit_url, db, rabbit_prefix, embed)
        await first.start()
        try:
            await _until(lambda: _now(bool(embed.performed)))
            await second.start()
            await _drop_connection(first)
            # The broker hands the copy to the other consumer at once.
            await _until(lambda: _now(_outcomes("busy") > busy_before or len(embed.performed) > 1))
            embed.release.set()
            await _until(lambda: _now(_row(db, message_id)[0] == "done"))
        finally:
            embed.release.set()
            await second.stop()
            await first.stop()
        return await _left_in_queue(rabbit_url, rabbit_prefix)

    assert asyncio.run(scenario()) == 0
    _embedded_once(db, embed, message_id)
    assert _outcomes("busy") == busy_before + 1


def test_a_message_whose_handler_died_runs_when_its_lease_lapses(
    rabbit_url: str, db: Database, rabbit_prefix: str
) -> None:
    embed = Embed()
    embed.release.set()
    [message_id] = _enqueue(db, 1)
    lease = timedelta(seconds=1)
    with db.transaction() as session:  # published, then taken by a process that was killed
        outbox.claim(session, now=utcnow(), lease=lease, max_attempts=5, count_attempt=False)
        assert (
            outbox.start_attempt(
                session, message_id, 5, token=outbox.new_token(), now=utcnow(), lease=lease
            )
            is None
        )
    busy_before = _outcomes("busy")

    async def scenario() -> int:
        transport = _embedding(rabbit_url, db, rabbit_prefix, embed)
        await transport.start()
        try:
            # The broker's redelivery of the dead process's copy arrives while its lease lasts:
            # refused and acknowledged, since the relay publishes the message again later.
            await transport.broker.publish(
                {"id": message_id}, exchange=transport.exchange, routing_key="inbound", persist=True
            )
            await _until(lambda: _now(_outcomes("busy") > busy_before))
            assert embed.performed == []
            await _until(lambda: _now(_row(db, message_id)[0] == "done"))
        finally:
            await transport.stop()
        return await _left_in_queue(rabbit_url, rabbit_prefix)

    assert asyncio.run(scenario()) == 0
    assert embed.performed == [0]
    assert _row(db, message_id) == ("done", 2)  # the dead run's attempt and this one


async def _now(value: bool) -> bool:
    return value
