"""Required lessons past the fatigue budget, shown as grouped items: which group each one is in.

The router marks a placement `grouped` when its work item already shows as many items of their
own as the budget allows (only required lessons get that far). A target shows a work item's
grouped placements as one checklist item that links to the list of the work item's lessons,
instead of one item each, and reads that item back once per lesson:

- ticked → each lesson in it is ticked (acknowledged); unticked → each is open again;
- `N/A: reason` → each lesson in it is dismissed with that reason.

So the signal pipeline records one signal per placement, as for items of their own. A group
that has been ticked or dismissed takes no newcomers (a tick must never cover a lesson nobody
saw): lessons grouped later start a new grouped item after it. Groups keep their members from one
rendering to the next, so the same entries render the same text and a repeat writes nothing.
Pure: no I/O.
"""

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from core.lesson import Mandate

K = TypeVar("K")
_STRENGTH = (Mandate.REQUIRED, Mandate.REVIEW_AND_JUSTIFY, Mandate.INVITED)


class Member(Protocol):
    """What a grouped item shows of each of its lessons (an `EmbedEntry`, a Jira item)."""

    @property
    def mandate(self) -> Mandate:
        """The lesson's mandate in this work item."""
        ...

    @property
    def due_at(self) -> datetime | None:
        """When it is due."""
        ...

    @property
    def list_url(self) -> str | None:
        """Where the work item's lessons are listed."""
        ...


def partition(
    grouped: Sequence[str], previous: Iterable[tuple[K, Collection[str], bool]]
) -> list[tuple[K | None, list[str]]]:
    """The groups that show the `grouped` placement ids, each with its key from `previous`
    (None for a new group).

    `previous` lists the groups already in the target, in order, as (key, member ids, marked):
    each keeps the members still grouped; the ids in none of them join the last group when it is
    unmarked, else start a new one.
    """
    wanted = set(grouped)
    taken: set[str] = set()
    groups: list[tuple[K | None, list[str], bool]] = []
    for key, members, marked in previous:
        kept = [m for m in dict.fromkeys(members) if m in wanted and m not in taken]
        if kept:
            taken.update(kept)
            groups.append((key, kept, marked))
    newcomers = [p for p in dict.fromkeys(grouped) if p not in taken]
    if newcomers:
        if groups and not groups[-1][2]:
            groups[-1][1].extend(newcomers)
        else:
            groups.append((None, newcomers, False))
    return [(key, members) for key, members, _marked in groups]


def mandate(members: Iterable[Member]) -> Mandate:
    """The strongest mandate among a group's lessons (all required, as the router groups)."""
    found = {e.mandate for e in members}
    return next((m for m in _STRENGTH if m in found), Mandate.REQUIRED)


def due(members: Iterable[Member]) -> datetime | None:
    """The earliest due date among a group's lessons."""
    dates = [e.due_at for e in members if e.due_at is not None]
    return min(dates) if dates else None


def list_url(members: Iterable[Member]) -> str | None:
    """Where the work item's lessons are listed (every grouped entry carries the same link)."""
    return next((e.list_url for e in members if e.list_url), None)


def label(members: Sequence[Member]) -> str:
    """What the grouped item says it holds: `25 more required lessons`."""
    noun = "required lesson" if mandate(members) == Mandate.REQUIRED else "lesson"
    return f"{len(members)} more {noun}{'' if len(members) == 1 else 's'}"
