"""The active rule set (reloaded from disk, swapped atomically) and its compiled engine."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from router.ruleset.source import fingerprint, read_rule_files, rule_set_of
from rules.engine import Engine
from rules.loader import RuleSet, RuleSetError
from store import lessons
from store.engine import Database

log = logging.getLogger("cairn.rules")


class ActiveRules:
    """Holds the rule set in force; readers always see one whole version, never a mix."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._rule_set: RuleSet | None = None
        self._engine: tuple[tuple[str, int], Engine] | None = None
        self.last_error: str | None = None
        self.watchers: list[Callable[[RuleSet], None]] = []
        """Told of the rule set in force at start and at every check (cheap when unchanged)."""
        self._read: str | None = None
        """The fingerprint of the files last parsed, valid or not."""
        if path is not None:
            files = read_rule_files(path)
            self._rule_set = rule_set_of(files)  # a broken rule set stops start-up
            self._read = fingerprint(files)
            log.info("rule set %s loaded from %s", self._rule_set.version, path)

    @property
    def rule_set(self) -> RuleSet | None:
        """The rule set in force (None when no rules are configured)."""
        return self._rule_set

    def reload(self) -> bool:
        """Re-read the rule files; swap in the new set if valid and different. True if swapped.

        An invalid edit keeps the previous rule set in force and is reported in `last_error`.
        """
        if self.path is None:
            return False
        try:
            files = read_rule_files(self.path)
            read = fingerprint(files)
            if read == self._read:
                return False  # the files did not change: nothing to parse
            self._read = read
            candidate = rule_set_of(files)
        except (RuleSetError, OSError) as exc:
            if str(exc) != self.last_error:
                log.error("rule files invalid; keeping version %s:\n%s", self.version, exc)
            self.last_error = str(exc)
            return False
        self.last_error = None
        if self._rule_set is not None and candidate.version == self._rule_set.version:
            return False
        self._rule_set = candidate  # one reference assignment: readers see old or new, whole
        log.info("rule set %s now in force", candidate.version)
        return True

    def announce(self) -> None:
        """Tell every watcher the rule set in force; a watcher's failure is logged and told
        again at the next check."""
        rule_set = self._rule_set
        if rule_set is None:
            return
        for watcher in self.watchers:
            try:
                watcher(rule_set)
            except Exception:
                log.exception("a rule set watcher failed; it is told again at the next check")

    @property
    def version(self) -> str | None:
        """Version of the rule set in force."""
        return None if self._rule_set is None else self._rule_set.version

    def warm(self, db: Database) -> None:
        """Compile for the current rules and lessons outside any write transaction (SQLite holds
        its write lock for a whole transaction), so the route stage finds the engine ready."""
        rule_set = self._rule_set
        if rule_set is None:
            return
        with db.transaction() as session:
            key = (rule_set.version, lessons.fingerprint(session))
            cached = self._engine
            if cached is not None and cached[0] == key:
                return
            published = lessons.published(session)
        engine = Engine(rule_set, published)
        with self._lock:
            self._engine = (key, engine)

    def engine(self, session: Session) -> Engine | None:
        """The engine for the current rules and published lessons, compiled when either changed."""
        rule_set = self._rule_set
        if rule_set is None:
            return None
        key = (rule_set.version, lessons.fingerprint(session))
        cached = self._engine
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            cached = self._engine
            if cached is not None and cached[0] == key:
                return cached[1]
            engine = Engine(rule_set, lessons.published(session))
            self._engine = (key, engine)
            return engine
