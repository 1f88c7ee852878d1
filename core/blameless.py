"""Blameless capture: names of people and blame phrasing in a draft, weak-capture warnings,
and redaction (pure).

People who fear blame record "a politically safe fiction": a draft is checked for the people its
source names (authors, assignees, commenters), for @-mentions, and for blame phrasing in the
statement and contributing conditions. Each finding can be redacted (the text replaced in every
field, the original kept only in the restricted provenance) or explicitly kept by a reviewer.
"""

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field

from core.base import CoreModel, Name, Text, UtcDateTime
from core.lesson import Lesson
from core.work_capture import Person

NAME_REPLACEMENT = "[name removed]"
BLAME_REPLACEMENT = "[blame removed]"
DEFAULT_SLOGANS = (
    "communicate better",
    "be more careful",
    "pay more attention",
    "test more",
    "double check",
    "follow the process",
    "be careful",
)
DEFAULT_MIN_STATEMENT = 40
BLAME = re.compile(
    r"\b(?:human error|operator error|careless(?:ly|ness)?|negligen(?:t|ce)|sloppy|lazy|"
    r"incompeten(?:t|ce)|(?:his|her|their|your) fault|fault of|to blame|blamed?\b|"
    r"should have known|should have been more careful|didn't bother|did not bother|"
    r"forgot to|failed to (?:follow|check|notice|test|read|review)|not paying attention|"
    r"(?:he|she|they) (?:messed|screwed) up)",
    re.IGNORECASE,
)
_MENTION = re.compile(r"(?<![\w@/.])@(?P<login>[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,38}[A-Za-z0-9])?)")
_JIRA_MENTION = re.compile(r"\[~(?:accountid:)?(?P<login>[^\]\s]{1,128})\]")
_MIN_TERM = 3


class FindingKind(StrEnum):
    """What a finding is about."""

    PERSON = "person"
    """A name (or login) of someone the source names."""
    MENTION = "mention"
    """An @-mention (`@dana-h`, Jira's `[~accountid:…]`)."""
    BLAME = "blame"
    """Blame phrasing ("human error", "forgot to", …)."""


class Decision(StrEnum):
    """What a reviewer decided about a finding."""

    REDACTED = "redacted"
    KEPT = "kept"


class Finding(CoreModel):
    """One name or blame phrase found in a draft, where, and with some context."""

    id: Name
    kind: FindingKind
    term: Name = Field(description="The text found (a name, a mention, a phrase).")
    fields: tuple[Name, ...] = Field(description="Where it occurs: `statement`, `context.…`.")
    excerpt: Text = ""


class Weakness(CoreModel):
    """A weak-capture warning: the lesson may not teach anyone anything yet."""

    code: Name
    message: Text


class DecisionRecord(CoreModel):
    """A reviewer's decision on a finding (the term itself only when it was kept)."""

    finding: Name
    kind: FindingKind
    decision: Decision
    by: Name
    at: UtcDateTime
    fields: tuple[Name, ...] = ()
    term: str | None = Field(default=None, description="Only for a kept name: it is published.")


@dataclass(frozen=True, slots=True)
class Known:
    """Names known from the sources: display names and logins."""

    names: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()


def finding_id(kind: FindingKind, term: str) -> str:
    """A stable id for a finding: the same term found again is the same finding."""
    digest = hashlib.sha256(f"{kind.value}:{term.casefold()}".encode()).hexdigest()[:12]
    return f"{kind.value}-{digest}"


def texts(lesson: Lesson) -> Iterator[tuple[str, str]]:
    """Every free-text field of a lesson that is placed in targets: (field path, text)."""
    yield "title", lesson.title
    yield "statement", lesson.statement
    yield "context.what_happened", lesson.context.what_happened
    yield "context.expected", lesson.context.expected
    yield "context.actual", lesson.context.actual
    for index, condition in enumerate(lesson.context.contributing_conditions):
        yield f"context.contributing_conditions[{index}]", condition
    yield "applicability.adaptation_notes", lesson.applicability.adaptation_notes
    for index, item in enumerate(lesson.checklist):
        yield f"checklist[{index}].text", item.text


def _terms(known: Known) -> list[tuple[str, re.Pattern[str]]]:
    terms: dict[str, re.Pattern[str]] = {}
    for name in known.names:
        name = " ".join(name.split())
        if len(name) < _MIN_TERM:
            continue
        terms.setdefault(name, re.compile(rf"(?<!\w){re.escape(name)}(?!\w)", re.IGNORECASE))
        parts = name.split(" ")
        if len(parts) > 1 and len(parts[0]) >= _MIN_TERM and parts[0][:1].isupper():
            # A first name alone, as written (capitalised), is how colleagues name each other.
            terms.setdefault(parts[0], re.compile(rf"(?<![\w@]){re.escape(parts[0])}(?!\w)"))
    for login in known.logins:
        if len(login) >= _MIN_TERM:
            pattern = re.compile(rf"(?<![\w@]){re.escape(login)}(?![\w-])", re.IGNORECASE)
            terms.setdefault(login, pattern)
    return sorted(terms.items(), key=lambda pair: -len(pair[0]))


def _excerpt(text: str, start: int, end: int) -> str:
    left, right = max(0, start - 40), min(len(text), end + 40)
    return (
        ("…" if left else "")
        + text[left:right].replace("\n", " ")
        + ("…" if right < len(text) else "")
    )


def scan(lesson: Lesson, known: Known) -> list[Finding]:
    """Every name, @-mention and blame phrase in the lesson's placed text, one finding each."""
    found: dict[str, dict[str, Any]] = {}

    def add(kind: FindingKind, term: str, where: str, text: str, span: tuple[int, int]) -> None:
        ident = finding_id(kind, term)
        entry = found.setdefault(
            ident, {"id": ident, "kind": kind, "term": term, "fields": [], "excerpt": ""}
        )
        if where not in entry["fields"]:
            entry["fields"].append(where)
        if not entry["excerpt"]:
            entry["excerpt"] = _excerpt(text, *span)

    terms = _terms(known)
    for where, text in texts(lesson):
        if not text:
            continue
        for pattern in (_MENTION, _JIRA_MENTION):
            for match in pattern.finditer(text):
                add(FindingKind.MENTION, match.group(0), where, text, match.span())
        for term, pattern in terms:
            for match in pattern.finditer(text):
                if not _inside_mention(text, match.start()):
                    add(FindingKind.PERSON, term, where, text, match.span())
        if where == "statement" or where.startswith("context.contributing_conditions"):
            for match in BLAME.finditer(text):
                add(FindingKind.BLAME, match.group(0).lower(), where, text, match.span())
    return [Finding.model_validate({**e, "fields": tuple(e["fields"])}) for e in found.values()]


def _inside_mention(text: str, start: int) -> bool:
    return start > 0 and text[start - 1] in "@~:"


def open_findings(findings: Iterable[Finding], kept: Iterable[str]) -> list[Finding]:
    """The findings no reviewer has decided to keep."""
    keep = set(kept)
    return [f for f in findings if f.id not in keep]


def blocking(findings: Iterable[Finding], kept: Iterable[str]) -> list[Finding]:
    """Names and mentions that would reach a PR or ticket though nobody kept them."""
    return [
        f
        for f in open_findings(findings, kept)
        if f.kind in (FindingKind.PERSON, FindingKind.MENTION)
    ]


def _replace_all(text: str, finding: Finding, known: Known) -> str:
    if finding.kind == FindingKind.BLAME:
        return re.sub(re.escape(finding.term), BLAME_REPLACEMENT, text, flags=re.IGNORECASE)
    if finding.kind == FindingKind.MENTION:
        return text.replace(finding.term, NAME_REPLACEMENT)
    for term, pattern in _terms(known):
        if term.casefold() == finding.term.casefold():
            return pattern.sub(NAME_REPLACEMENT, text)
    return text


def redact(lesson: Lesson, finding: Finding, known: Known) -> tuple[Lesson, dict[str, str]]:
    """The lesson with the finding's text replaced in every field, and the originals changed
    (field path → text before), for the restricted provenance."""
    data = lesson.model_dump(mode="json")
    originals: dict[str, str] = {}
    for where, text in texts(lesson):
        changed = _replace_all(text, finding, known)
        if changed != text:
            originals[where] = text
            _set(data, where, changed)
    return Lesson.model_validate(data, strict=False), originals


def redact_terms(lesson: Lesson, redacted: Sequence[Finding], known: Known) -> Lesson:
    """Re-apply earlier redactions (a refreshed draft must not bring a removed name back)."""
    for finding in redacted:
        lesson, _ = redact(lesson, finding, known)
    return lesson


_PATH = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")


def _set(data: dict[str, Any], where: str, value: str) -> None:
    target: Any = data
    steps = [(m[1], m[2]) for m in _PATH.finditer(where)]
    for position, (key, index) in enumerate(steps):
        last = position == len(steps) - 1
        if index is None:
            if last:
                target[key] = value
            else:
                target = target[key]
        elif last:
            target[key][int(index)] = value
        else:
            target = target[key][int(index)]


def warnings(
    lesson: Lesson,
    *,
    min_statement: int = DEFAULT_MIN_STATEMENT,
    slogans: Sequence[str] = DEFAULT_SLOGANS,
) -> list[Weakness]:
    """Weak-capture warnings: a short or slogan statement, no conditions, no evidence."""
    found: list[Weakness] = []
    statement = " ".join(lesson.statement.split())
    if len(statement) < min_statement:
        found.append(
            Weakness(
                code="statement_short",
                message=f"The statement has {len(statement)} characters; a lesson someone else "
                f"can act on usually needs at least {min_statement}.",
            )
        )
    lowered = statement.casefold()
    for slogan in slogans:
        if slogan.strip() and slogan.casefold().strip() in lowered:
            found.append(
                Weakness(
                    code="slogan",
                    message=f'The statement reads like a slogan ("{slogan.strip()}"): say what '
                    "to check or change, and when.",
                )
            )
            break
    if not lesson.context.contributing_conditions:
        found.append(
            Weakness(
                code="no_conditions",
                message="No contributing conditions: under which conditions does it apply?",
            )
        )
    if not lesson.provenance.evidence_links:
        found.append(
            Weakness(code="no_evidence", message="No evidence link: where can a reader check it?")
        )
    return found


class Original(CoreModel):
    """A field's text before a redaction: restricted (owners and admins), never placed."""

    finding: Name
    field: Name
    text: Text
    by: Name
    at: UtcDateTime


class CaptureRecord(CoreModel):
    """What capture and review know about a captured lesson besides the lesson itself."""

    lesson_id: Name
    source_ref: Name
    findings: tuple[Finding, ...] = ()
    decisions: tuple[DecisionRecord, ...] = ()
    problems: tuple[Text, ...] = Field(default=(), description="E.g. unusable front matter.")
    notified: tuple[Name, ...] = Field(default=(), description="Sources told where it went.")

    @property
    def kept(self) -> tuple[str, ...]:
        """Findings a reviewer kept."""
        return tuple(d.finding for d in self.decisions if d.decision == Decision.KEPT)


class Restricted(CoreModel):
    """The restricted provenance: who the sources name, and every redacted original."""

    people: tuple[Person, ...] = ()
    redacted: tuple[Finding, ...] = ()
    originals: tuple[Original, ...] = ()

    @property
    def known(self) -> Known:
        """The names and logins to look for."""
        return Known(
            names=tuple(p.name for p in self.people if p.name),
            logins=tuple(p.login for p in self.people if ":" not in p.login),
        )
