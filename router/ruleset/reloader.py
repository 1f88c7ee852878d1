"""Re-reads the rule files periodically (a valid change is swapped in atomically) and keeps
the compiled engine current with the published lessons."""

import asyncio

from router.periodic import Periodic
from router.ruleset.active import ActiveRules
from store.engine import Database


class RulesReloader:
    """A background task calling `ActiveRules.reload` every `interval` seconds."""

    def __init__(self, rules: ActiveRules, interval: float, db: Database) -> None:
        self.rules = rules
        self.db = db
        self._loop = Periodic("rules-reload", interval, self._reload)

    async def start(self) -> None:
        """Start polling (nothing to do when no rules path is configured)."""
        if self.rules.path is not None:
            await asyncio.to_thread(self.rules.warm, self.db)
            await asyncio.to_thread(self.rules.announce)
            self._loop.start(wait_first=True)

    async def stop(self) -> None:
        """Stop polling."""
        await self._loop.stop()

    def _reload(self) -> None:
        self.rules.reload()
        self.rules.warm(self.db)
        self.rules.announce()
