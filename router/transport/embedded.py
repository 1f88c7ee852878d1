"""The embedded default: workers claim messages from the database outbox; no server needed.

Durable by construction: a message is marked done in the same transaction as its handler's
writes, and a claim is only a lease, so `kill -9` at any point loses and duplicates nothing.
The running worker renews its lease, so a message is handed out again only when its worker died.
"""

import asyncio
import logging
from contextlib import suppress

from router.pipeline import Dispatcher
from router.transport.poller import Pacing, Wakeup, claim_due
from store.engine import Database
from store.outbox import Message

log = logging.getLogger("cairn.embedded")


class EmbeddedTransport:
    """N worker loops in this process, fed by one claimer.

    The claimer leases due messages in batches (one transaction for up to 2N messages, instead
    of one per message) and hands them to the workers through a bounded queue, so a claimed
    message waits at most for the runs ahead of it. Only the oldest unfinished message of a key
    is ever claimed, so the workers never run two messages of one key at once.
    """

    mode = "embedded"

    def __init__(
        self,
        db: Database,
        dispatcher: Dispatcher,
        pacing: Pacing,
        *,
        consume: bool = True,
    ) -> None:
        self.db = db
        self.dispatcher = dispatcher
        self.pacing = pacing
        self.consume = consume
        self._wakeup = Wakeup()
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[Message] | None = None
        self._room = asyncio.Event()

    async def start(self) -> None:
        """Start the claimer and the worker loops (none when this process only serves the API)."""
        if self.consume:
            self._queue = asyncio.Queue(maxsize=self.pacing.concurrency)
            self._tasks = [asyncio.create_task(self._claim(), name="cairn-claimer")] + [
                asyncio.create_task(self._work(self._queue), name=f"cairn-worker-{i}")
                for i in range(self.pacing.concurrency)
            ]

    async def stop(self) -> None:
        """Cancel the loops; a handler already running in a thread finishes its transaction.
        Messages claimed but not started keep their lease until it lapses, then go out again."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._queue = None

    def notify(self) -> None:
        """Wake the claimer."""
        self._wakeup.set()

    async def problem(self) -> str | None:
        """The database is the queue; `/readyz` checks it separately."""
        if self.consume and not all(not t.done() for t in self._tasks):
            return "an embedded worker or the claimer stopped"
        return None

    async def _claim(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            room = queue.maxsize - queue.qsize()
            if room == 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                messages = await asyncio.to_thread(claim_due, self.db, self.pacing, room)
            except Exception:
                log.exception("could not claim work; retrying in %.1fs", self.pacing.poll_interval)
                await asyncio.sleep(self.pacing.poll_interval)
                continue
            if not messages:
                await self._wakeup.wait(self.pacing.poll_interval)
                continue
            for message in messages:
                queue.put_nowait(message)

    async def _work(self, queue: "asyncio.Queue[Message]") -> None:
        while True:
            message = await queue.get()
            self._room.set()
            try:
                # The claim's token fences the run: while it renews its lease no other
                # worker is handed the message, and if it lost the lease it records nothing.
                await asyncio.to_thread(
                    self.dispatcher.run,
                    message.id,
                    token=message.token,
                    lease_seconds=self.pacing.lease_seconds,
                )
            except Exception:
                # Recording the failure failed too (database gone): the lease expires and
                # the message is handed out again.
                log.exception("message %s could not be processed or failed", message.id)
                await asyncio.sleep(self.pacing.poll_interval)
            # The run may have queued follow-up work: claim it now, not a poll interval later.
            self._wakeup.set()
