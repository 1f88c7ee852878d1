"""What RabbitMQ and NATS JetStream share in broker mode: the outbox relay and fenced runs.

The database stays the source of truth. The relay leases due outbox rows and publishes their
ids; consumers run each id through the Dispatcher and acknowledge only after its transaction
committed. A message lost anywhere is published again when its relay lease expires, and a
repeat is harmless because the Dispatcher skips messages already done.

A redelivery never runs beside its first handling: a closed connection cancels the consumer
but not the handler's thread, so this process keeps the runs it started and a copy of one of
them waits for it; across processes the run token on the outbox row refuses the copy while the
first run's lease (renewed as it runs) lasts.
"""

import asyncio
import functools
import logging
from contextlib import suppress
from typing import Any

from router.pipeline import Dispatcher, Outcome
from router.transport.poller import Pacing, Wakeup, claim_due, release
from store import outbox
from store.engine import Database

RELAY_BATCH = 100


class BrokerTransport:
    """The relay and the fenced runs; a subclass declares its topology, publishes and
    consumes on its broker (`self.broker`, a FastStream broker)."""

    mode = "broker"
    broker_name = "the broker"
    broker: Any
    log: logging.Logger

    def __init__(
        self, db: Database, dispatcher: Dispatcher, pacing: Pacing, *, consume: bool
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.pacing = pacing
        self.consume = consume
        self._wakeup = Wakeup()
        self._relay_task: asyncio.Task[None] | None = None
        # Runs started by this process, by outbox id, until their thread returns.
        self._running: dict[int, asyncio.Future[Outcome]] = {}

    async def _declare(self) -> None:
        """Connect and declare what the broker needs (before consumers start)."""
        raise NotImplementedError

    async def _publish(self, message: outbox.Message) -> None:
        """Publish one outbox message's id, waiting until the broker has it."""
        raise NotImplementedError

    async def start(self) -> None:
        """Declare the topology, start consumers (if any) and the relay."""
        await self._declare()
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
            return f"{self.broker_name} is not reachable"
        if self._relay_task is None or self._relay_task.done():
            return "the outbox relay is not running"
        return None

    async def _handle(self, message_id: int) -> bool:
        """Run one delivered message; False when not even its failure could be recorded (the
        database is gone), and the caller parks the copy."""
        first = self._running.get(message_id)
        if first is not None:
            # The broker delivered again while this process still runs the first copy (its
            # connection closed under it): wait for that run instead of starting a second one.
            self.log.info(
                "message %s delivered again while its first run goes on; waiting", message_id
            )
            await asyncio.wait([first])
        try:
            await self._run(message_id)
        except Exception:
            self.log.exception("message %s could not be processed; parked", message_id)
            return False
        return True

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
                self.log.exception("relay could not read the outbox")
                await asyncio.sleep(self.pacing.poll_interval)
                continue
            if not messages:
                await self._wakeup.wait(self.pacing.poll_interval)
                continue
            for index, message in enumerate(messages):
                try:
                    await self._publish(message)
                except Exception:
                    self.log.exception(
                        "publish failed; handing %d messages back", len(messages) - index
                    )
                    with suppress(Exception):
                        await asyncio.to_thread(release, self.db, [m.id for m in messages[index:]])
                    await asyncio.sleep(self.pacing.poll_interval)
                    break
