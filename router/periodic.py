"""A background task running a blocking step every few seconds, off the event loop."""

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress

log = logging.getLogger("cairn")


class Periodic:
    """Runs `step` in a worker thread every `interval` seconds until stopped; a failing step is
    logged and tried again at the next interval."""

    def __init__(self, name: str, interval: float, step: Callable[[], None]) -> None:
        self.name = name
        self.interval = interval
        self.step = step
        self._task: asyncio.Task[None] | None = None

    def start(self, *, wait_first: bool = False) -> None:
        """Start the loop (`wait_first`: the first step comes after one interval)."""
        self._task = asyncio.create_task(self._run(wait_first), name=f"cairn-{self.name}")

    async def stop(self) -> None:
        """Stop the loop; a step in flight finishes in its thread."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, wait_first: bool) -> None:
        if wait_first:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await asyncio.to_thread(self.step)
            except Exception:
                log.exception("%s failed", self.name)
            await asyncio.sleep(self.interval)
