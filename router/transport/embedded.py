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

log = logging.getLogger("cairn.embedded")


class EmbeddedTransport:
    """N worker loops in this process, competing for outbox rows."""

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

    async def start(self) -> None:
        """Start the worker loops (none when this process only serves the API)."""
        if self.consume:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"cairn-worker-{i}")
                for i in range(self.pacing.concurrency)
            ]

    async def stop(self) -> None:
        """Cancel the loops; a handler already running in a thread finishes its transaction."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def notify(self) -> None:
        """Wake idle workers."""
        self._wakeup.set()

    async def problem(self) -> str | None:
        """The database is the queue; `/readyz` checks it separately."""
        if self.consume and not any(not t.done() for t in self._tasks):
            return "no embedded worker is running"
        return None

    async def _work(self) -> None:
        while True:
            try:
                messages = await asyncio.to_thread(claim_due, self.db, self.pacing, 1)
            except Exception:
                log.exception("could not claim work; retrying in %.1fs", self.pacing.poll_interval)
                await asyncio.sleep(self.pacing.poll_interval)
                continue
            if not messages:
                await self._wakeup.wait(self.pacing.poll_interval)
                continue
            for message in messages:
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
