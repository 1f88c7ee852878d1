"""Lesson: a versioned, transferable statement learned from experience, with its evidence."""

import hashlib
import json
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, HttpUrl, SerializerFunctionWrapHandler, model_serializer

from core.base import CoreModel, Name, Text, UtcDateTime

LmsName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
"""The key a training module is named under: `moodle`, `canvas`, `xapi`."""


class LessonForm(StrEnum):
    """How the lesson is expressed."""

    STANDARD = "standard"
    CHECKLIST = "checklist"
    WARNING = "warning"
    CASE = "case"
    TRAINING = "training"


class Mandate(StrEnum):
    """How binding a placed lesson is, strongest first."""

    REQUIRED = "required"
    REVIEW_AND_JUSTIFY = "review_and_justify"
    INVITED = "invited"


class LessonStatus(StrEnum):
    """Lifecycle: draft → in_review → published → retired."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    RETIRED = "retired"


class Confidence(StrEnum):
    """How sure the author is that the lesson holds."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class SourceRead(CoreModel):
    """One read of a work source a lesson was captured from: which source, which version."""

    ref: Name = Field(description="`jira:PM-7`, `github:acme/api#12`, `github:acme/api:<path>`.")
    version: Name = Field(description="The source's own version: `updated` time or commit sha.")
    read_at: UtcDateTime


class Provenance(CoreModel):
    """Where the lesson came from: incidents, evidence, who captured it and when."""

    source_incidents: tuple[Name, ...] = Field(default=(), description="Incident refs.")
    evidence_links: tuple[HttpUrl, ...] = ()
    captured_by: Name
    captured_at: UtcDateTime
    sources: tuple[SourceRead, ...] = Field(
        default=(), description="Work sources (tickets, issues, files) read, each version once."
    )

    @model_serializer(mode="wrap")
    def _without_empty_sources(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Lessons captured from incidents keep their canonical form (content hash).
        data: dict[str, Any] = handler(self)
        if not data.get("sources"):
            data.pop("sources", None)
        return data


class LessonContext(CoreModel):
    """What happened, against what was expected, and under which conditions."""

    what_happened: Text = ""
    expected: Text = ""
    actual: Text = ""
    contributing_conditions: tuple[Text, ...] = ()
    confidence: Confidence = Confidence.MEDIUM


class Scope(CoreModel):
    """A set of places: any listed value matches; an empty field does not constrain."""

    services: tuple[Name, ...] = ()
    components: tuple[Name, ...] = ()
    repos: tuple[Name, ...] = ()
    paths: tuple[Name, ...] = ()
    teams: tuple[Name, ...] = ()
    tags: tuple[Name, ...] = ()


class Applicability(Scope):
    """Where the lesson transfers, where it must not be applied, and what must be adapted."""

    exclusions: Scope = Scope()
    adaptation_notes: Text = ""


class ChecklistItem(CoreModel):
    """One concrete check an engineer can tick."""

    id: Name
    text: Text


class TrainingModule(CoreModel):
    """An optional training module assigned through an LMS."""

    title: Name
    url: HttpUrl | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    modules: dict[LmsName, Name] = Field(
        default_factory=dict,
        description="Where the module lives in each LMS: `moodle` → course id, `canvas` → "
        "`course_id/assignment_id`, `xapi` → the activity IRI completions are reported for.",
    )

    @model_serializer(mode="wrap")
    def _without_empty_modules(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Versions published before modules existed keep their canonical form (content hash).
        data: dict[str, Any] = handler(self)
        if not data.get("modules"):
            data.pop("modules", None)
        return data


class Review(CoreModel):
    """The transferability check a reviewer signed off: where it applies, what to adapt."""

    reviewer: Name
    reviewed_at: UtcDateTime
    notes: Text = ""


class Lesson(CoreModel):
    """One version of a lesson; every published change is a new immutable version."""

    id: Name
    version: int = Field(ge=1)
    title: Name
    statement: Text
    form: LessonForm = LessonForm.STANDARD
    provenance: Provenance
    context: LessonContext = LessonContext()
    applicability: Applicability = Applicability()
    mandate: Mandate = Mandate.INVITED
    checklist: tuple[ChecklistItem, ...] = ()
    training: TrainingModule | None = None
    owner: Name
    review_by: date | None = None
    review: Review | None = Field(default=None, description="Set when a reviewer approves.")
    authors: tuple[Name, ...] = Field(
        default=(),
        description="Who wrote this version: captured it, opened the revision, or edited it. "
        "None of them may approve it.",
    )
    status: LessonStatus = LessonStatus.DRAFT
    superseded_by: Name | None = None
    severity_rank: int | None = Field(
        default=None, ge=1, le=5, description="Worst severity rank among the source incidents."
    )


def content_hash(document: dict[str, object]) -> str:
    """SHA-256 of a lesson version's canonical JSON (`model_dump(mode="json")`), as recorded in
    the audit log when it is published and checked again in evidence bundles."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
