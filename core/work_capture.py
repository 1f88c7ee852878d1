"""Turning a finished piece of work (a postmortem ticket, a labelled issue, a postmortem file)
into a draft lesson (pure).

Heading convention: the body is split at Markdown headings (`#` … `######`) and Jira wiki
headings (`h1.` … `h6.`); each section whose heading names a lesson field fills it (see
`DEFAULT_HEADINGS`, replaceable with a mapping file). Contributing conditions are the section's
list items, or its paragraphs. YAML front matter (between `---` lines at the very top) fills the
fields it names exactly and wins over the sections.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import Field, HttpUrl, ValidationError

from core.base import CoreModel, Name, Text
from core.errors import ConfigurationError
from core.lesson import (
    Applicability,
    Confidence,
    Lesson,
    LessonContext,
    LessonForm,
    LessonStatus,
    Provenance,
    SourceRead,
)
from core.yaml_strict import StrictLoader

CAPTURED_BY = "cairn:capture"
PLACEHOLDER = "To be written from "
UNASSIGNED = "unassigned"


class SourceKind(StrEnum):
    """What kind of work the source is."""

    ISSUE = "issue"
    DISCUSSION = "discussion"
    PULL = "pull"
    """A merged pull request: its added files under the configured paths are the sources."""
    FILE = "file"


class Person(CoreModel):
    """Someone the source names: its author, assignee, reporter or a commenter."""

    login: Name = Field(description="The system's stable id: a GitHub login, a Jira accountId.")
    name: str = Field(default="", max_length=200, description="The display name, when known.")
    role: Name = "author"


class SourceDocument(CoreModel):
    """A work source as read from Jira or GitHub, before it becomes a draft."""

    system: Literal["jira", "github"]
    kind: SourceKind
    ref: Name
    version: Name
    title: Name
    url: HttpUrl | None = None
    project: Name
    issue_type: Name | None = None
    labels: tuple[Name, ...] = ()
    body: Text = ""
    people: tuple[Person, ...] = ()
    evidence_links: tuple[HttpUrl, ...] = ()
    linked: tuple[Name, ...] = Field(default=(), description="Refs of linked issues.")
    team: Name | None = None
    merge_sha: Name | None = Field(default=None, description="A merged pull request's commit.")
    refresh_only: bool = Field(
        default=False, description="A changed (not added) file: refreshes a draft, starts none."
    )

    @property
    def author(self) -> Person | None:
        """Who wrote the source (a file: who merged its pull request's author)."""
        return next((p for p in self.people if p.role in ("author", "reporter")), None)


class CaptureEvent(CoreModel):
    """A piece of work finished that may hold a lesson (checked against the capture settings)."""

    type: Literal["capture"]
    document: SourceDocument


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    """Which work becomes a draft: Jira issue types and labels, GitHub labels and file paths."""

    jira_types: frozenset[str] = frozenset({"postmortem", "post-incident review", "retro"})
    jira_labels: frozenset[str] = frozenset({"lesson-learned"})
    github_labels: frozenset[str] = frozenset({"lesson"})
    github_paths: tuple[str, ...] = ("docs/postmortems/*.md",)
    notify_author: bool = False
    headings: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_HEADINGS)

    def wants(self, document: SourceDocument) -> bool:
        """Whether the finished work is one Cairn captures (a pull: when paths are configured)."""
        labels = {label.lower() for label in document.labels}
        if document.system == "jira":
            kind = (document.issue_type or "").lower()
            return kind in self.jira_types or bool(labels & self.jira_labels)
        if document.kind == SourceKind.PULL:
            return bool(self.github_paths)
        return bool(labels & self.github_labels)


DEFAULT_HEADINGS: Mapping[str, tuple[str, ...]] = {
    "statement": ("lesson", "lesson learned", "lessons learned", "key lesson", "takeaway"),
    "what_happened": ("what happened", "summary", "incident summary", "background"),
    "expected": ("expected", "what we expected", "expected behaviour", "expected behavior"),
    "actual": ("actual", "what actually happened", "actual behaviour", "actual behavior"),
    "contributing_conditions": (
        "contributing conditions",
        "contributing factors",
        "conditions",
        "why it happened",
    ),
}
"""Lesson field → the headings (case and trailing punctuation ignored) whose section fills it."""
TEXT_FIELDS = ("statement", "what_happened", "expected", "actual")
_HEADING = re.compile(r"^(?:#{1,6}\s+|h[1-6]\.\s+)(?P<title>.+?)\s*#*\s*$", re.IGNORECASE)
_ITEM = re.compile(r"^\s*(?:[-*+#]|\d+[.)])\s+(?P<text>.+)$")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(?P<yaml>.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
FRONT_MATTER_KEYS = frozenset(
    {
        "title",
        "statement",
        "owner",
        "form",
        "confidence",
        "what_happened",
        "expected",
        "actual",
        "contributing_conditions",
        "services",
        "components",
        "repos",
        "paths",
        "tags",
        "evidence",
    }
)


def load_headings(text: str, name: str = "the heading mapping") -> dict[str, tuple[str, ...]]:
    """A heading mapping file (`headings: {field: [heading, …]}`), checked strictly."""
    try:
        data = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{name}: not valid YAML") from exc
    table = data.get("headings") if isinstance(data, dict) else None
    if not isinstance(table, dict) or set(data) != {"headings"}:
        raise ConfigurationError(f"{name}: expected one key, `headings`, holding a mapping")
    mapping: dict[str, tuple[str, ...]] = {}
    for key, headings in table.items():
        if key not in DEFAULT_HEADINGS:
            raise ConfigurationError(f"{name}: {key!r} is not one of {sorted(DEFAULT_HEADINGS)}")
        if not isinstance(headings, list) or not all(isinstance(h, str) for h in headings):
            raise ConfigurationError(f"{name}: headings.{key} must be a list of headings")
        mapping[key] = tuple(_norm(h) for h in headings)
    return mapping


def _norm(heading: str) -> str:
    return re.sub(r"\s+", " ", heading).strip().rstrip(":?.").strip().lower()


def split_front_matter(body: str) -> tuple[dict[str, Any], str, str | None]:
    """(front matter, the rest of the body, a problem with the front matter or None)."""
    found = _FRONT.match(body)
    if found is None:
        return {}, body, None
    rest = body[found.end() :]
    try:
        data = yaml.load(found["yaml"], Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        return {}, rest, f"front matter is not valid YAML{where}"
    if data is None:
        return {}, rest, None
    if not isinstance(data, dict):
        return {}, rest, "front matter must be a mapping"
    unknown = sorted(str(k) for k in data if k not in FRONT_MATTER_KEYS)
    if unknown:
        return {}, rest, f"front matter has unknown keys {unknown}"
    return data, rest, None


def sections(
    body: str, headings: Mapping[str, tuple[str, ...]] = DEFAULT_HEADINGS
) -> dict[str, str]:
    """Lesson field → the text of the first section whose heading names it."""
    wanted = {heading: name for name, listed in headings.items() for heading in listed}
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in body.splitlines():
        match = _HEADING.match(line)
        if match is not None:
            name = wanted.get(_norm(match["title"]))
            current = name if name is not None and name not in found else None
            if current is not None:
                found[current] = []
        elif current is not None:
            found[current].append(line)
    return {name: "\n".join(lines).strip() for name, lines in found.items()}


def conditions(text: str) -> tuple[str, ...]:
    """A section's list items, or its paragraphs when it has no list."""
    items = [m["text"].strip() for m in map(_ITEM.match, text.splitlines()) if m is not None]
    if not items:
        items = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return tuple(dict.fromkeys(item[:20_000] for item in items if item))


def lesson_id_for(ref: str) -> str:
    """A stable lesson id per source, so an edit or a redelivery never makes a second draft."""
    slug = re.sub(r"[^a-z0-9]+", "-", ref.lower()).strip("-")
    return f"from-{slug}"[:200].rstrip("-")


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a source says, field by field, and any problem reading its front matter."""

    fields: dict[str, Any]
    problem: str | None = None


def read(document: SourceDocument, headings: Mapping[str, tuple[str, ...]]) -> Mapped:
    """The lesson fields the source's front matter and sections give."""
    front, rest, problem = split_front_matter(document.body)
    found: dict[str, Any] = {}
    for name, text in sections(rest, headings).items():
        if name == "contributing_conditions":
            found[name] = list(conditions(text))
        elif text:
            found[name] = text
    for key, value in front.items():
        found[key] = list(value) if isinstance(value, list) else value
    return Mapped(found, problem)


def draft_from(
    document: SourceDocument,
    now: datetime,
    *,
    owner: str | None = None,
    headings: Mapping[str, tuple[str, ...]] = DEFAULT_HEADINGS,
) -> tuple[Lesson, str | None]:
    """A draft lesson with the source's provenance, context and evidence; and a front-matter
    problem to show the reviewer (the sections are used instead) or None."""
    mapped = read(document, headings)
    try:
        return _draft(document, now, owner, mapped.fields), mapped.problem
    except (ValidationError, ValueError, TypeError) as exc:
        problem = f"front matter does not fit the lesson: {_first_error(exc)}"
        plain = read(document.model_copy(update={"body": _FRONT.sub("", document.body)}), headings)
        return _draft(document, now, owner, plain.fields), problem


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
    return str(exc)


def _draft(
    document: SourceDocument, now: datetime, owner: str | None, found: dict[str, Any]
) -> Lesson:
    evidence = [str(link) for link in (document.url, *document.evidence_links) if link]
    evidence += [str(link) for link in found.get("evidence") or []]
    statement = str(found.get("statement") or "").strip()
    return Lesson.model_validate(
        {
            "id": lesson_id_for(document.ref),
            "version": 1,
            "title": found.get("title") or document.title,
            "statement": statement or f"{PLACEHOLDER}{document.ref}.",
            "form": found.get("form") or LessonForm.STANDARD,
            "provenance": Provenance(
                evidence_links=tuple(HttpUrl(u) for u in dict.fromkeys(evidence)),
                captured_by=CAPTURED_BY,
                captured_at=now,
                sources=(SourceRead(ref=document.ref, version=document.version, read_at=now),),
            ),
            "context": {
                "what_happened": found.get("what_happened") or "",
                "expected": found.get("expected") or "",
                "actual": found.get("actual") or "",
                "contributing_conditions": found.get("contributing_conditions") or [],
                "confidence": found.get("confidence") or Confidence.LOW,
            },
            "applicability": Applicability.model_validate(
                {
                    n: found.get(n) or []
                    for n in ("services", "components", "repos", "paths", "tags")
                },
                strict=False,
            ),
            "owner": found.get("owner") or owner or document.team or UNASSIGNED,
            "status": LessonStatus.DRAFT,
        },
        strict=False,
    )


def refresh(lesson: Lesson, document: SourceDocument, fresh: Lesson, now: datetime) -> Lesson:
    """Fold a later version of the source into a draft (see `core.capture.refresh`).

    What the source says is refreshed; the reviewer's title and owner stay, and the statement
    is replaced only while it is still the placeholder. The read is added to the provenance.
    """
    context: LessonContext = lesson.context.model_copy(
        update={
            "what_happened": fresh.context.what_happened or lesson.context.what_happened,
            "expected": fresh.context.expected or lesson.context.expected,
            "actual": fresh.context.actual or lesson.context.actual,
            "contributing_conditions": fresh.context.contributing_conditions
            or lesson.context.contributing_conditions,
        }
    )
    reads = lesson.provenance.sources
    if not any(r.ref == document.ref and r.version == document.version for r in reads):
        reads = (*reads, SourceRead(ref=document.ref, version=document.version, read_at=now))
    links = (*lesson.provenance.evidence_links, *fresh.provenance.evidence_links)
    update: dict[str, Any] = {
        "context": context,
        "provenance": lesson.provenance.model_copy(
            update={"evidence_links": tuple(dict.fromkeys(links)), "sources": reads}
        ),
    }
    if lesson.statement.startswith(PLACEHOLDER) and not fresh.statement.startswith(PLACEHOLDER):
        update["statement"] = fresh.statement
    return lesson.model_copy(update=update)
