"""What every outbound connector provides: make a work item show its placed lessons, read back.

The pipeline hands a target the *whole* desired set of items for one work item; the target reads
the item first, finds its own markers, and writes only what differs. That makes every call safe to
repeat: a retry after a crash, or a redelivered event, writes nothing the second time.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from core.feedback import ItemObservation
from core.gate import Gate
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
    grouped: bool = False
    """True: placed past the fatigue budget; shown inside the work item's grouped item, not as
    an item of its own, and read back from it (see `connectors.grouping`)."""
    list_url: str | None = None
    """Where the work item's lessons are listed: the grouped item links there."""
    modules: tuple[tuple[str, str], ...] = ()
    """The lesson's training module in each LMS (`moodle` → course id, …), for LMS targets."""
    handle: str | None = None
    """The handle the target gave the item when it was placed (to withdraw it by)."""
    gate: Gate = Gate.WARN
    """What the item weighs in the work item's merge check while it is open (its rule's)."""
    waived: bool = False
    """An active waiver exempts the work item's team (or the work item) from the lesson: the
    item counts as done in the merge check."""
    revised_from: int | None = None
    """The version first placed, when a revision updated the item to `lesson_version`: the
    target shows the new text marked "updated to vN", keeping the item's mark."""
    reopened: str | None = None
    """Why a revision put the ticked item back to open: the target unticks it once, showing
    "reopened: <reason>" (an item already showing it is left as the engineer has it)."""


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


@dataclass(frozen=True, slots=True)
class Reminder:
    """One overdue placement to remind the work item's people of."""

    placement_id: str
    key: str
    """The reminder's effect key (placement and which reminder it is): a retry that finds it
    in the target posts nothing."""
    title: str
    mandate: Mandate
    due_at: datetime
    lesson_url: str | None = None


@dataclass(frozen=True, slots=True)
class RemindResult:
    """What a reminder call did: the keys now in the target (posted or found), the comment."""

    reminded: frozenset[str] = frozenset()
    comment: str | None = None
    """The id of the comment posted, None when every reminder was already there."""
    writes: int = 0
    reads: int = 0


@runtime_checkable
class Reminding(Protocol):
    """A target that can post a reminder on a work item (a comment on the PR or ticket)."""

    def remind(self, item: WorkItem, reminders: Sequence[Reminder]) -> RemindResult:
        """Post one comment naming the `reminders` not already posted (their keys are read
        back first), or nothing when all of them are there. Raises like `embed`."""
        ...


@dataclass(frozen=True, slots=True)
class GateResult:
    """What a merge-check call did: the conclusion the check shows, and its cost."""

    conclusion: str
    written: bool = False
    """False when the check already said the same: nothing was written."""
    writes: int = 0
    reads: int = 0


@runtime_checkable
class Gating(Protocol):
    """A target that shows a work item's open required items as a merge check."""

    @property
    def gating(self) -> bool:
        """Whether checks are posted (a GitHub App is configured)."""
        ...

    def gate(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> GateResult:
        """Re-read the work item and make its check show the verdict for `entries`; write
        nothing when it already does. Raises like `embed`."""
        ...


@runtime_checkable
class ClosingReasons(Protocol):
    """A target that can read why a person closed a pull request unmerged: their comment."""

    def closing_reason(self, via: str, closer: str | None, closed_at: datetime) -> str | None:
        """The comment `closer` wrote on `via` around `closed_at` (GitHub's "Close with
        comment" posts it just before the close), or None when they wrote none. Raises like
        `embed`."""
        ...
