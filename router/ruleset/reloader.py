"""Re-reads the rule files periodically (a valid change is swapped in atomically) and keeps
the compiled engine current with the published lessons."""

import asyncio
import logging
from contextlib import suppress

from router.ruleset.active import ActiveRules
from store.engine import Database

log = logging.getLogger("cairn.rules")


class RulesReloader:
    """A background task calling `ActiveRules.reload` every `interval` seconds."""

    def __init__(self, rules: ActiveRules, interval: float, db: Database) -> None:
        self.rules = rules
        self.interval = interval
        self.db = db
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start polling (nothing to do when no rules path is configured)."""
        if self.rules.path is not None:
            await asyncio.to_thread(self.rules.warm, self.db)
            self._task = asyncio.create_task(self._run(), name="cairn-rules-reload")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self.rules.reload)
                await asyncio.to_thread(self.rules.warm, self.db)
            except Exception:
                log.exception("rule reload failed")
