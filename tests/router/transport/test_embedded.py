"""The embedded transport: a message runs in one worker at a time, and a dead worker's message
runs again once its lease lapses."""

import asyncio
import threading
from datetime import datetime, timedelta
from typing import Any

from core.base import utcnow
from router.pipeline import Dispatcher, Effect, StageContext
from router.transport.embedded import EmbeddedTransport
from router.transport.poller import Pacing
from store import audit, outbox
from store.engine import Database
from store.tables import OutboxRow

LEASE_SECONDS = 0.3


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


def _transport(db: Database, embed: Embed) -> EmbeddedTransport:
    dispatcher = Dispatcher(db, {"embed": embed.effect()}, max_attempts=5)
    pacing = Pacing(concurrency=3, poll_interval=0.02, lease_seconds=LEASE_SECONDS, max_attempts=5)
    return EmbeddedTransport(db, dispatcher, pacing)


def _enqueue(db: Database) -> int:
    with db.transaction() as session:
        return outbox.enqueue(session, topic="embed", payload={"n": 7}, key="pr-1", now=utcnow())


def _row(db: Database, message_id: int) -> tuple[str, int, datetime | None]:
    with db.transaction() as session:
        row = session.get(OutboxRow, message_id)
        assert row is not None
        return row.status, row.attempts, row.leased_until


def _embedded(db: Database) -> list[str]:
    with db.transaction() as session:
        return [e.subject for e in audit.entries(session, action="embedded")]


async def _until(predicate: Any, seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)


def test_a_long_embed_keeps_its_lease_and_no_other_worker_runs_it(db: Database) -> None:
    embed = Embed()
    message_id = _enqueue(db)

    async def scenario() -> None:
        transport = _transport(db, embed)
        await transport.start()
        try:
            await _until(lambda: bool(embed.performed))
            claimed_until = _row(db, message_id)[2]
            assert claimed_until is not None
            # Wait out several leases: the running worker renews its own, so the idle workers
            # polling meanwhile are never handed the message (without renewal one would be).
            renewed = claimed_until + timedelta(seconds=3 * LEASE_SECONDS)
            await _until(
                lambda: len(embed.performed) > 1 or (_row(db, message_id)[2] or renewed) > renewed
            )
            embed.release.set()
            await _until(lambda: _row(db, message_id)[0] == "done")
        finally:
            embed.release.set()
            await transport.stop()

    asyncio.run(scenario())
    assert embed.performed == [7]
    assert _row(db, message_id)[:2] == ("done", 1)
    assert _embedded(db) == ["7"]


def test_a_dead_workers_message_runs_again_once_its_lease_lapses(db: Database) -> None:
    embed = Embed()
    embed.release.set()
    message_id = _enqueue(db)
    with db.transaction() as session:  # claimed by a worker that was then killed
        outbox.claim(session, now=utcnow(), lease=timedelta(seconds=LEASE_SECONDS), max_attempts=5)

    async def scenario() -> None:
        transport = _transport(db, embed)
        await transport.start()
        try:
            await _until(lambda: _row(db, message_id)[0] == "done")
        finally:
            await transport.stop()

    asyncio.run(scenario())
    assert embed.performed == [7]
    assert _row(db, message_id)[:2] == ("done", 2)
    assert _embedded(db) == ["7"]


class Overlaps:
    """An Effect whose `perform` takes a moment and notes which keys run at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[int, str] = {}
        self.most_at_once = 0
        self.same_key_at_once = False
        self.order: list[tuple[str, int]] = []

    def effect(self) -> Effect:
        def prepare(ctx: StageContext, payload: dict[str, Any]) -> Any:
            return (payload["key"], payload["n"], ctx.message_id)

        def perform(plan: Any) -> Any:
            key, n, message_id = plan
            with self.lock:
                self.same_key_at_once |= key in self.running.values()
                self.running[message_id] = key
                self.most_at_once = max(self.most_at_once, len(self.running))
                self.order.append((key, n))
            threading.Event().wait(0.05)
            with self.lock:
                del self.running[message_id]
            return plan

        def record(ctx: StageContext, plan: Any, result: Any) -> None:
            if result[1] == 0:  # the first message of a key queues one more for it
                ctx.emit("embed", {"key": result[0], "n": 9}, key=result[0])

        return Effect(prepare=prepare, perform=perform, record=record)


def test_workers_share_claimed_batches_one_message_of_a_key_at_a_time(db: Database) -> None:
    stage = Overlaps()
    keys = [f"pr-{k}" for k in range(5)]
    with db.transaction() as session:
        for n in range(3):
            for key in keys:
                outbox.enqueue(
                    session, topic="embed", payload={"key": key, "n": n}, key=key, now=utcnow()
                )
    dispatcher = Dispatcher(db, {"embed": stage.effect()}, max_attempts=5)
    pacing = Pacing(concurrency=3, poll_interval=5.0, lease_seconds=30, max_attempts=5)

    async def scenario() -> None:
        transport = EmbeddedTransport(db, dispatcher, pacing)
        await transport.start()
        try:
            await _until(lambda: len(stage.order) == 20)
            await _until(lambda: outbox_counts(db)["done"] == 20)
        finally:
            await transport.stop()

    asyncio.run(scenario())
    assert not stage.same_key_at_once
    assert stage.most_at_once > 1  # different keys ran side by side
    for key in keys:  # each key's messages in the order they were queued, the follow-up last
        assert [n for k, n in stage.order if k == key] == [0, 1, 2, 9]
    assert outbox_counts(db) == {"pending": 0, "leased": 0, "done": 20, "dead": 0}


def outbox_counts(db: Database) -> dict[str, int]:
    with db.transaction() as session:
        return outbox.counts(session)


def test_messages_waiting_behind_a_long_run_keep_their_leases_and_run_once(db: Database) -> None:
    """One worker, a batch claimed ahead: while the first message's embed lasts several leases,
    the others wait in the queue. The keeper renews their leases, so none lapses, none is
    claimed a second time, and each runs once, on its first attempt."""
    embed = Embed()
    ids = []
    with db.transaction() as session:
        for n in range(4):
            ids.append(
                outbox.enqueue(
                    session, topic="embed", payload={"n": n}, key=f"pr-{n}", now=utcnow()
                )
            )
    dispatcher = Dispatcher(db, {"embed": embed.effect()}, max_attempts=5)
    pacing = Pacing(concurrency=1, poll_interval=0.02, lease_seconds=LEASE_SECONDS, max_attempts=5)

    async def scenario() -> None:
        transport = EmbeddedTransport(db, dispatcher, pacing)
        await transport.start()
        try:
            await _until(lambda: bool(embed.performed))
            first_lease = {i: _row(db, i)[2] for i in ids[1:]}
            assert all(_row(db, i)[0] == "leased" for i in ids[1:])  # claimed in one batch
            await asyncio.sleep(4 * LEASE_SECONDS)  # the first run lasts four leases
            for i in ids[1:]:
                status, attempts, until = _row(db, i)
                assert (status, attempts) == ("leased", 1)
                assert until is not None and until > (first_lease[i] or until)  # renewed
                assert until > utcnow()  # and live
            embed.release.set()
            await _until(lambda: outbox_counts(db)["done"] == 4)
        finally:
            embed.release.set()
            await transport.stop()

    asyncio.run(scenario())
    assert sorted(embed.performed) == [0, 1, 2, 3]
    assert [_row(db, i)[:2] for i in ids] == [("done", 1)] * 4
