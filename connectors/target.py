"""What every outbound connector provides: make a work item show its placed lessons, read back.

The pipeline hands a target the *whole* desired set of items for one work item; the target reads
the item first, finds its own markers, and writes only what differs. That makes every call safe to
repeat: a retry after a crash, or a redelivered event, writes nothing the second time.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from core.feedback import ItemObservation
from core.lesson import Mandate
from core.placement import EmbeddingForm
from core.work import System, WorkItem


@dataclass(frozen=True, slots=True)
class EmbedEntry:
    """One placed lesson as the target should show it."""

    placement_id: str
    lesson_id: str
    lesson_version: int
    title: str
    text: str
    rule_id: str
    mandate: Mandate
    form: EmbeddingForm
    lesson_url: str | None = None
    due_at: datetime | None = None
    withdrawn: bool = False
    """True: the lesson was retired; the target removes or strikes the item."""


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """What a target call did: the handle of each item and how many writes it took."""

    handles: dict[str, str] = field(default_factory=dict)
    writes: int = 0
    reads: int = 0


class Target(Protocol):
    """An outside system Cairn places lessons into (Jira, GitHub, an LMS)."""

    system: System
    own_actor: str | None
    """The account Cairn writes as; events caused by it are Cairn's own edits coming back."""

    def complete(self, item: WorkItem) -> WorkItem:
        """Fill in what the webhook left out (changed files, the author's team); reads only."""
        ...

    def embed(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> EmbedResult:
        """Make the work item show exactly `entries` (withdrawn ones removed), human text kept.

        Raises TransientError (with retry_after) for rate limits and outages, PayloadError when
        the work item can never take the items (deleted, locked).
        """
        ...

    def observe(self, item: WorkItem) -> tuple[ItemObservation, ...]:
        """Re-read the work item and report the mark on every item Cairn placed."""
        ...
