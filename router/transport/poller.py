"""Claiming due outbox messages, and a wake-up signal so new work skips the poll interval."""

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from core.base import utcnow
from store import outbox
from store.engine import Database


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a process takes work: handlers at once, idle wait, lease length, tries."""

    concurrency: int = 4
    poll_interval: float = 0.5
    lease_seconds: float = 30.0
    max_attempts: int = 8
    republish_seconds: float = 300.0


class Wakeup:
    """A level-triggered wake-up shared by the loops of one process."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        """Wake every waiting loop."""
        self._event.set()

    async def wait(self, seconds: float) -> None:
        """Return when woken or after `seconds`, whichever is first."""
        # Not `asyncio.wait_for`: before Python 3.12 it can swallow a cancellation that arrives
        # as the event is set, and a loop cancelled at that moment would never stop.
        with suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._event.wait()
        self._event.clear()


def claim_due(
    db: Database, pacing: Pacing, limit: int, *, for_relay: bool = False
) -> list[outbox.Message]:
    """Lease up to `limit` due messages in one short transaction.

    A worker's lease is `lease_seconds` and counts an attempt; a relay's lease is the longer
    `republish_seconds` (how long a published message may wait in the broker before it is
    taken as lost and published again) and counts nothing.
    """
    seconds = pacing.republish_seconds if for_relay else pacing.lease_seconds
    with db.transaction() as session:
        return outbox.claim(
            session,
            now=utcnow(),
            lease=timedelta(seconds=seconds),
            max_attempts=pacing.max_attempts,
            limit=limit,
            count_attempt=not for_relay,
        )


def release(db: Database, message_ids: list[int]) -> None:
    """Hand leased messages straight back."""
    with db.transaction() as session:
        outbox.release(session, message_ids, utcnow())
