"""The training sync, in `cairn serve` with workers and in `cairn worker`: every
CAIRN_TRAINING_SYNC_SECONDS, learners are re-routed from the team map, open assignments are
asked for their progress, and new xAPI statements are read from the learning record store."""

import logging
from collections.abc import Callable, Mapping

from connectors.lms import LmsClient
from router.lms import learners, progress
from router.lms.statements import StatementPoller
from router.periodic import Periodic
from router.settings import Settings
from store.engine import Database

log = logging.getLogger("cairn.training")


class TrainingSync:
    """One periodic task running each step in turn; a failing step does not stop the others."""

    def __init__(
        self,
        db: Database,
        interval: float,
        clients: Mapping[str, LmsClient],
        statements: Callable[[], int] | None = None,
        notify: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.clients = clients
        self.statements = statements
        self.notify = notify
        self._loop = Periodic("training-sync", interval, self._step)

    @classmethod
    def configured(
        cls,
        db: Database,
        settings: Settings,
        clients: Mapping[str, LmsClient],
        notify: Callable[[], None] | None = None,
    ) -> "TrainingSync":
        """The sync as the settings configure it (the xAPI poll when an LRS is set)."""
        statements = None
        if settings.xapi_url:
            poller = StatementPoller.configured(db, settings)
            statements = poller.poll_once
        return cls(db, settings.training_sync_seconds, clients, statements, notify)

    async def start(self) -> None:
        """Start syncing (nothing to do when no LMS and no LRS is configured)."""
        if self.clients or self.statements is not None:
            self._loop.start()

    async def stop(self) -> None:
        """Stop syncing."""
        await self._loop.stop()

    def _step(self) -> None:
        self.run_once()

    def run_once(self) -> dict[str, int]:
        """One round: learners queued for routing, progress signals, statements recorded."""
        done = {"learners": 0, "progress": 0, "statements": 0}
        steps: list[tuple[str, Callable[[], int]]] = [("learners", lambda: learners.sync(self.db))]
        if self.clients:
            steps.append(("progress", lambda: progress.poll(self.db, self.clients)))
        if self.statements is not None:
            steps.append(("statements", self.statements))
        for name, step in steps:
            try:
                done[name] = step()
            except Exception:
                log.exception("training sync: %s failed; the next round tries again", name)
        if done["learners"] and self.notify is not None:
            self.notify()
        if done["progress"] or done["statements"]:
            log.info("training sync: %s", done)
        return done
