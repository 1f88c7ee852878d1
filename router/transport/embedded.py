"""The embedded default: workers claim messages from the database outbox; no server needed.

Durable by construction: a message is marked done in the same transaction as its handler's
writes, and a claim is only a lease, so `kill -9` at any point loses and duplicates nothing.
The running worker renews its lease, so a message is handed out again only when its worker died.
"""

import asyncio
import logging
import time
from collections import defaultdict
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from core.base import utcnow
from router.pipeline import Dispatcher
from router.transport.poller import Pacing, Wakeup, claim_due
from store import outbox
from store.engine import Database
from store.outbox import Message

log = logging.getLogger("cairn.embedded")


BATCH = 8
"""Messages claimed ahead per worker: a claim costs about as much for eight as for one."""


@dataclass(slots=True)
class _Waiting:
    """A claimed message in the queue, not yet taken by a worker."""

    message: Message
    renewed: float
    """When (monotonic) its lease was last set."""


class EmbeddedTransport:
    """N worker loops in this process, fed by one claimer.

    The claimer leases due messages in batches (one transaction for up to 8N messages, instead
    of one per message) and hands them to the workers through a bounded queue. While a claimed
    message waits there, a keeper renews its lease every third of the lease, so however long
    the runs ahead of it take, its lease does not lapse and no other worker is handed it; once
    a worker takes it, its run renews its own. Only the oldest unfinished message of a key is
    ever claimed, so the workers never run two messages of one key at once.
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
        self._waiting: dict[int, _Waiting] = {}

    async def start(self) -> None:
        """Start the claimer and the worker loops (none when this process only serves the API)."""
        if self.consume:
            self._queue = asyncio.Queue(maxsize=BATCH * self.pacing.concurrency)
            self._tasks = [
                asyncio.create_task(self._claim(), name="cairn-claimer"),
                asyncio.create_task(self._keep(), name="cairn-lease-keeper"),
            ] + [
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
        self._waiting.clear()

    def notify(self) -> None:
        """Wake the claimer."""
        self._wakeup.set()

    async def problem(self) -> str | None:
        """The database is the queue; `/readyz` checks it separately."""
        if self.consume and not all(not t.done() for t in self._tasks):
            return "an embedded worker, the claimer or the lease keeper stopped"
        return None

    async def _claim(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            # Refill in batches: claim again only when at most one message per worker waits
            # (a claim costs about as much for many messages as for one).
            if queue.qsize() > self.pacing.concurrency:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                room = queue.maxsize - queue.qsize()
                messages = await asyncio.to_thread(claim_due, self.db, self.pacing, room)
            except Exception:
                log.exception("could not claim work; retrying in %.1fs", self.pacing.poll_interval)
                await asyncio.sleep(self.pacing.poll_interval)
                continue
            if not messages:
                await self._wakeup.wait(self.pacing.poll_interval)
                continue
            claimed = time.monotonic()
            for message in messages:
                self._waiting[message.id] = _Waiting(message, claimed)
                queue.put_nowait(message)

    async def _keep(self) -> None:
        """Renew the leases of claimed messages waiting in the queue (see the class)."""
        lease = self.pacing.lease_seconds
        while True:
            await asyncio.sleep(lease / 6)
            due = time.monotonic() - lease / 3
            by_token: dict[str, list[int]] = defaultdict(list)
            for waiting in self._waiting.values():
                if waiting.renewed <= due and waiting.message.token is not None:
                    by_token[waiting.message.token].append(waiting.message.id)
            for token, ids in by_token.items():
                renewing = time.monotonic()
                try:
                    renewed = await asyncio.to_thread(self._extend, token, ids, lease)
                except Exception:
                    log.warning("could not renew the leases of %d waiting messages", len(ids))
                    continue
                for message_id in ids:
                    still = self._waiting.get(message_id)
                    if still is None:
                        continue  # a worker took it meanwhile; its run renews its own lease
                    if message_id in renewed:
                        still.renewed = renewing
                    else:  # no longer this claim's: its run will find so and change nothing
                        del self._waiting[message_id]

    def _extend(self, token: str, ids: list[int], lease: float) -> set[int]:
        with self.db.transaction() as session:
            return outbox.extend_waiting(session, token, ids, utcnow() + timedelta(seconds=lease))

    async def _work(self, queue: "asyncio.Queue[Message]") -> None:
        while True:
            message = await queue.get()
            self._waiting.pop(message.id, None)
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
