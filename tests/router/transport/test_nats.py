"""The NATS JetStream transport against the real server: streams, consumers, flow, fencing."""

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, RetentionPolicy, StorageType

from core.base import utcnow
from router.pipeline import Dispatcher, Effect, StageContext
from router.transport.nats import NatsTransport, stream_name
from router.transport.poller import Pacing
from store import audit, migrate, outbox
from store.engine import Database


@pytest.fixture
def postgres_db(postgres_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database (real row locks for the competing consumers)."""
    database = Database(postgres_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


def _recorder(who: str, pause: float = 0.0) -> Effect:
    """A stage calling an outside system: the call (`perform`, no transaction open) counts its
    runs, as a target's write would, and may take `pause` seconds for a `slow` message."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def perform(payload: dict[str, Any]) -> None:
        if pause and payload.get("slow"):
            time.sleep(pause)
        CALLS[str(payload["n"])].append(who)

    def record(ctx: StageContext, payload: dict[str, Any], _result: None) -> None:
        subject = str(payload["n"])
        audit.record(
            ctx.session, actor=who, action="seen", subject=subject, details={}, now=ctx.now
        )

    return Effect(prepare, perform, record)


CALLS: dict[str, list[str]] = defaultdict(list)
"""Each outside call made, by message, and who made it (cleared by each test)."""


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


def _transport(
    url: str, db: Database, prefix: str, *, consume: bool, who: str = "a", pause: float = 0.0
) -> NatsTransport:
    dispatcher = Dispatcher(
        db, {"inbound": _recorder(who, pause)}, max_attempts=3, count_attempts=True
    )
    pacing = Pacing(concurrency=4, poll_interval=0.05, lease_seconds=5, max_attempts=3)
    return NatsTransport(
        url, db, dispatcher, pacing, prefix=prefix, delivery_limit=5, consume=consume
    )


def _enqueue(db: Database, count: int, **extra: Any) -> list[int]:
    with db.transaction() as session:
        return [
            outbox.enqueue(
                session, topic="inbound", payload={"n": n, **extra}, key=str(n), now=utcnow()
            )
            for n in range(count)
        ]


async def _until(predicate: Any, seconds: float = 20.0) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():
            await asyncio.sleep(0.05)


def _done(db: Database) -> int:
    with db.transaction() as session:
        return outbox.counts(session)["done"]


def _seen(db: Database) -> list[Any]:
    with db.transaction() as session:
        return audit.entries(session, action="seen")


def test_streams_are_durable_and_the_consumer_acks_explicitly_with_a_limit(
    nats_url: str, sqlite_db: Database, nats_prefix: str
) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        transport = _transport(nats_url, sqlite_db, nats_prefix, consume=True)
        await transport.start()
        connection = await nats.connect(nats_url)
        js = connection.jetstream()
        name = stream_name(nats_prefix)
        found = (
            await js.stream_info(name),
            await js.stream_info(f"{name}_dead"),
            await js.consumer_info(name, f"{name}-inbound"),
        )
        await connection.close()
        await transport.stop()
        return found

    work, dead, consumer = asyncio.run(scenario())
    assert work.config.storage == StorageType.FILE
    assert work.config.retention == RetentionPolicy.WORK_QUEUE
    assert f"{nats_prefix}.inbound" in (work.config.subjects or [])
    assert dead.config.storage == StorageType.FILE
    assert consumer.config.ack_policy == AckPolicy.EXPLICIT
    assert consumer.config.max_deliver == 5
    assert consumer.config.durable_name == f"{stream_name(nats_prefix)}-inbound"


def test_consumers_process_each_message_once(nats_url: str, db: Database, nats_prefix: str) -> None:
    _enqueue(db, 50)

    async def scenario() -> None:
        transport = _transport(nats_url, db, nats_prefix, consume=True)
        await transport.start()
        assert await transport.problem() is None

        async def drained() -> bool:
            return _done(db) == 50

        await _until(drained)
        await transport.stop()

    asyncio.run(scenario())
    assert sorted(int(e.subject) for e in _seen(db)) == list(range(50))


def test_two_processes_compete_for_the_work_and_run_each_message_once(
    nats_url: str, postgres_db: Database, nats_prefix: str
) -> None:
    """Two transports (as two `cairn worker` processes would be) share the durable consumer."""
    _enqueue(postgres_db, 120)
    results: dict[str, BaseException] = {}

    def process(who: str) -> None:
        async def scenario() -> None:
            transport = _transport(nats_url, postgres_db, nats_prefix, consume=True, who=who)
            await transport.start()

            async def drained() -> bool:
                return _done(postgres_db) == 120

            await _until(drained, 40.0)
            await transport.stop()

        try:
            asyncio.run(scenario())
        except BaseException as exc:  # surfaced below
            results[who] = exc

    threads = [threading.Thread(target=process, args=(who,)) for who in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not results
    seen = _seen(postgres_db)
    assert Counter(int(e.subject) for e in seen) == Counter(range(120))
    assert sorted(CALLS, key=int) == [str(n) for n in range(120)]
    assert all(len(made) == 1 for made in CALLS.values())
    by_process = Counter(e.actor for e in seen)
    assert set(by_process) == {"one", "two"}, by_process


def test_a_handler_slower_than_ack_wait_is_not_run_a_second_time(
    nats_url: str, postgres_db: Database, nats_prefix: str
) -> None:
    """The handler outlives the server's ack_wait (5 s) while another consumer waits for work:
    in-progress heartbeats keep the server from handing the message to it."""
    _enqueue(postgres_db, 1, slow=True)

    async def scenario() -> None:
        slow = _transport(nats_url, postgres_db, nats_prefix, consume=True, who="slow", pause=8)
        idle = _transport(nats_url, postgres_db, nats_prefix, consume=True, who="idle")
        await slow.start()
        await asyncio.sleep(1.0)  # the slow one takes the message first
        await idle.start()

        async def drained() -> bool:
            return _done(postgres_db) == 1

        await _until(drained, 30.0)
        await asyncio.sleep(1.0)
        await idle.stop()
        await slow.stop()

    asyncio.run(scenario())
    assert CALLS == {"0": ["slow"]}  # one outside call, however long it took
    assert [e.actor for e in _seen(postgres_db)] == ["slow"]
    with postgres_db.transaction() as session:
        message = outbox.begin(session, 1)
    assert message is None  # done


def test_a_message_without_an_outbox_id_is_parked_with_the_dead_letters(
    nats_url: str, sqlite_db: Database, nats_prefix: str
) -> None:
    async def scenario() -> Any:
        transport = _transport(nats_url, sqlite_db, nats_prefix, consume=True)
        await transport.start()
        await transport.broker.publish(
            {"not": "an outbox message"}, f"{nats_prefix}.inbound", stream=transport.stream.name
        )
        connection = await nats.connect(nats_url)
        js = connection.jetstream()
        name = stream_name(nats_prefix)

        async def parked() -> bool:
            return (await js.stream_info(f"{name}_dead")).state.messages == 1

        await _until(parked)
        work = await js.stream_info(name)
        dead = await js.get_last_msg(f"{name}_dead", f"{nats_prefix}.dead")
        await connection.close()
        await transport.stop()
        return work, dead

    work, dead = asyncio.run(scenario())
    assert b"an outbox message" in dead.data
    assert (dead.headers or {}).get("x-cairn-dead") == "no outbox id"
    assert work.state.messages == 0  # terminated, so the work queue let it go
