"""The review cadence: what each owner team's lessons need (review, a flag, unread feedback),
as one issue in the team's own tracker. Pure: the models, the text and its digest.

One issue per owner team lists every item; the digest of what it lists decides whether the
issue must change, so a run that finds the same items writes nothing.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import Field, model_validator

from core.base import CoreModel

MARKER_PREFIX = "cairn:cadence:"
"""The hidden marker an issue carries (with the team's name) so a later run can find it."""
LABEL = "cairn-cadence"
"""The label every cadence issue carries."""


class Reason(StrEnum):
    """Why an item needs its owners' attention."""

    REVIEW_DUE = "review_due"
    FLAGGED = "flagged"
    FEEDBACK = "feedback"


class Tracker(CoreModel):
    """Where a team's cadence issue goes: a Jira project or a GitHub repository, one of them."""

    jira: str | None = Field(
        default=None, pattern=r"^[A-Z][A-Z0-9_]{0,49}$", description="A Jira project key."
    )
    github: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.-]{1,100}$",
        description="A GitHub repository, `owner/name`.",
    )

    @model_validator(mode="after")
    def _one_place(self) -> "Tracker":
        if (self.jira is None) == (self.github is None):
            raise ValueError("a tracker is either `jira: PROJECT` or `github: owner/repo`")
        return self

    @property
    def system(self) -> str:
        """`jira` or `github`."""
        return "jira" if self.jira is not None else "github"

    @property
    def where(self) -> str:
        """The project key or repository."""
        return self.jira or self.github or ""


@dataclass(frozen=True, slots=True)
class Item:
    """One lesson (or rule) to look at, and every reason it is listed."""

    kind: str
    """`lesson` or `rule`."""
    subject: str
    title: str
    link: str
    reasons: tuple[tuple[Reason, str], ...]
    """(reason, its detail: the review-by date, the measured precision, how many notes)."""


@dataclass(frozen=True, slots=True)
class Report:
    """What one owner team is asked to review."""

    team: str
    items: tuple[Item, ...]

    @property
    def title(self) -> str:
        """The issue's title."""
        return f"Cairn: {len(self.items)} lesson(s) of {self.team} to review"

    @property
    def digest(self) -> str:
        """Changes exactly when what the issue lists changes."""
        listed = [
            [i.kind, i.subject, i.title, i.link, list(map(list, i.reasons))] for i in self.items
        ]
        raw = json.dumps([self.team, listed], sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    @property
    def marker(self) -> str:
        """The marker naming the team (hidden in a GitHub body, a property in Jira)."""
        return MARKER_PREFIX + self.team


INTRO = (
    "These lessons need their owners' attention: revise or re-confirm each one, clear its flag, "
    "or read its feedback. Cairn updates this issue on every run; closing it without acting "
    "lists the same items again in a new issue next time."
)
EMPTY = "Nothing needs review now."


def describe(reason: Reason, detail: str) -> str:
    """One reason as a person reads it."""
    if reason == Reason.REVIEW_DUE:
        return f"review was due by {detail}"
    if reason == Reason.FLAGGED:
        return f"flagged for revision ({detail})"
    return f"{detail} unread feedback note(s)"


def line(item: Item) -> str:
    """An item's reasons, joined."""
    return "; ".join(describe(r, d) for r, d in item.reasons)


def merge(found: Iterable[tuple[str, str, str, str, Reason, str]]) -> tuple[Item, ...]:
    """(kind, subject, title, link, reason, detail) rows → one item per subject, in order of
    subject, reasons in a fixed order."""
    grouped: dict[tuple[str, str], tuple[str, str, dict[Reason, str]]] = {}
    for kind, subject, title, link, reason, detail in found:
        entry = grouped.setdefault((kind, subject), (title, link, {}))
        entry[2][reason] = detail
    order = list(Reason)
    return tuple(
        Item(
            kind=kind,
            subject=subject,
            title=title,
            link=link,
            reasons=tuple(sorted(reasons.items(), key=lambda r: order.index(r[0]))),
        )
        for (kind, subject), (title, link, reasons) in sorted(grouped.items())
    )


@dataclass(frozen=True, slots=True)
class Issue:
    """A cadence issue as its tracker shows it."""

    ref: str
    """`PAY-12`, or `owner/repo#7`."""
    url: str
    open: bool
    digest: str | None
    """The digest recorded in the issue (None when it carries none)."""


class IssueTracker(Protocol):
    """Where cadence issues are opened and kept up to date (Jira, GitHub)."""

    def find(self, where: str, report: Report) -> Issue | None:
        """The open cadence issue of the report's team in `where` (by its label and marker),
        or None."""
        ...

    def read(self, ref: str) -> Issue | None:
        """The issue as it is now, or None when it no longer exists."""
        ...

    def create(self, where: str, report: Report) -> Issue:
        """Open a new issue listing the report."""
        ...

    def update(self, ref: str, report: Report) -> Issue:
        """Make the issue list the report."""
        ...
