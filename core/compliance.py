"""Compliance: one cell per mandated lesson × team, summarising how its placements ended."""

from collections.abc import Iterable
from enum import StrEnum

from core.adoption import Tier


class Cell(StrEnum):
    """A lesson × team cell, worst placement first: one open item keeps the cell open."""

    OVERDUE = "overdue"
    OPEN = "open"
    DISMISSED = "dismissed"
    ACKNOWLEDGED = "acknowledged"
    VERIFIED = "verified"
    WAIVED = "waived"
    NOT_REACHED = "not reached"


class NotReached(StrEnum):
    """Why a `not reached` cell is empty."""

    SUPPRESSED = "suppressed"
    """The route selected the lesson and a suppressing rule or a revision flag held it back."""
    BUDGET = "budget"
    """The route selected the lesson and the fatigue budget left it out."""
    NO_RULE = "no matching rule"
    """The team had work in the period and no rule selected the lesson for any of it."""
    NO_WORK = "no work"
    """No work item of the team was seen in the period."""
    NOT_DELIVERED = "not delivered"
    """It was placed, but withdrawn or never delivered to the target."""


_FROM_TIER = {
    Tier.OVERDUE: Cell.OVERDUE,
    Tier.DELIVERED: Cell.OPEN,
    Tier.IGNORED: Cell.OPEN,  # the work ended with the item open: still not done
    Tier.DISMISSED: Cell.DISMISSED,
    Tier.ACKNOWLEDGED: Cell.ACKNOWLEDGED,
    Tier.VERIFIED: Cell.VERIFIED,
}
_WORST_FIRST = (Cell.OVERDUE, Cell.OPEN, Cell.DISMISSED, Cell.ACKNOWLEDGED, Cell.VERIFIED)


def cell_of(tiers: Iterable[Tier], *, waived: bool) -> Cell:
    """The cell for the tiers of the (unwaived) placements of one lesson in one team's work.

    A team-wide waiver wins; with none, the worst placement decides; with no placement that
    reached the work, the team was not reached.
    """
    if waived:
        return Cell.WAIVED
    found = {_FROM_TIER[t] for t in tiers if t in _FROM_TIER}
    for cell in _WORST_FIRST:
        if cell in found:
            return cell
    return Cell.NOT_REACHED
