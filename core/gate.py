"""The merge gate: how a rule's open required items weigh on a pull request's check run."""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Gate(StrEnum):
    """What open mandated items of one rule do to the work item's check."""

    BLOCK = "block"
    """The check fails while one is open: branch protection that requires it stops the merge."""
    WARN = "warn"
    """The check stays neutral and lists them: visible, never blocking."""
    OFF = "off"
    """The rule's items do not count in the check at all."""


class Conclusion(StrEnum):
    """The check-run conclusions the gate uses (GitHub's names)."""

    SUCCESS = "success"
    NEUTRAL = "neutral"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class OpenItem:
    """A mandated item that is neither ticked, dismissed with a reason, nor waived."""

    title: str
    gate: Gate
    lesson_url: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The check a work item should show: its conclusion and the items still open."""

    conclusion: Conclusion
    open_items: tuple[OpenItem, ...] = ()

    @property
    def blocking(self) -> tuple[OpenItem, ...]:
        """The open items of `block` rules."""
        return tuple(i for i in self.open_items if i.gate == Gate.BLOCK)


def verdict(open_items: Iterable[OpenItem]) -> Verdict:
    """Failure when an open item's rule blocks, neutral when only `warn` ones are open, else
    success; `off` items are left out before they count."""
    counted = tuple(i for i in open_items if i.gate != Gate.OFF)
    if any(i.gate == Gate.BLOCK for i in counted):
        return Verdict(Conclusion.FAILURE, counted)
    return Verdict(Conclusion.NEUTRAL if counted else Conclusion.SUCCESS, counted)
