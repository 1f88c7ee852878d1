"""The shapes of the API's answers and request bodies, as declared in the OpenAPI document.

Answers built from core models reuse them (a lesson is a `Lesson`); answers the reports build
as plain data are declared here field by field, with nested report rows left as objects. An
answer may carry fields beyond those declared (clients ignore what they do not know).
"""

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.lesson import Lesson, LessonForm, Mandate
from core.placement import Signal
from core.recurrence import MatchedOn, PlacementOutcome


class Answer(BaseModel):
    """Base of the answers declared here: the fields listed are always present."""

    model_config = ConfigDict(extra="allow")


class Rejected(Answer):
    """Every refusal: `status` is `rejected`, `reason` says what to change."""

    status: str = Field(examples=["rejected"])
    reason: str
    errors: list[Any] | None = None
    conflicts: list[str] | None = None


REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": Rejected, "description": description}
    for status, description in {
        400: "The body is not of a type the route takes, or not readable as one.",
        401: "No or an unknown credential.",
        403: "The caller's roles do not allow it.",
        404: "Nothing by that name.",
        409: "It conflicts with the current state.",
        413: "The body is too large.",
        422: "The request does not fit.",
        429: "Too many failed authentications; retry later.",
    }.items()
}
"""Refusals any route may answer, all in the `Rejected` shape."""


class Health(Answer):
    """`/healthz`."""

    status: str


class Readiness(Answer):
    """`/readyz`: each check is `ok` or the problem."""

    status: str
    mode: str
    checks: dict[str, str]


class HookAnswer(Answer):
    """A webhook delivery accepted (202), known already (200) or refused (4xx)."""

    status: str = Field(examples=["accepted", "duplicate", "recorded", "ignored", "rejected"])
    delivery: str | None = None
    inbox_id: int | None = None
    reason: str | None = None


HOOK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The sender's delivery, verified on its raw bytes (never re-encoded).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}
"""Webhook bodies: declared for clients, read raw by the route (signatures cover the bytes)."""


class StatementsRecorded(Answer):
    """What a push of xAPI statements did."""

    status: str
    statements: int
    recorded: int
    unknown_learner: int
    unknown_activity: int
    not_placed: int


class LiveEventRecorded(Answer):
    """What a Canvas Live Event did (`status` `ignored`: an event Cairn does not act on)."""

    status: str
    event: str | None = None
    reason: str | None = None


XAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "One xAPI statement or a list of them.",
        "content": {"application/json": {"schema": {"type": ["object", "array"]}}},
    }
}
CANVAS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": 'A Live Event JWT signed by Canvas, or `{"jwt": "…"}`.',
        "content": {
            "application/jwt": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


class Me(Answer):
    """`/api/v1/me`."""

    id: str
    roles: list[str]
    teams: list[str]
    permissions: list[str]


class ActiveRules(Answer):
    """The rule set in force."""

    version: str | None
    packs: list[str]
    sources: list[str]
    last_error: str | None


class RuleFiles(BaseModel):
    """Draft rule packs to check."""

    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(
        description="File name → YAML text of each draft pack (the whole set, as in git)."
    )


class RulesCheck(Answer):
    """What `cairn rules validate` would say."""

    ok: bool
    errors: list[str]
    version: str | None = None
    packs: list[str] | None = None
    rules: int | None = None


class PlacementView(Answer):
    """A placement with its adoption tier, team, project and timings."""

    id: str
    lesson_id: str
    work_item_ref: str
    state: str
    tier: str
    team: str | None
    project: str | None
    hours_to_acknowledge: float | None
    hours_to_verify: float | None
    theatre: list[str]


class PlacementDetail(PlacementView):
    """A placement with its signals."""

    signals: list[Signal]


class PlacementPage(Answer):
    """A page of placements."""

    total: int
    offset: int
    limit: int
    next_offset: int | None
    items: list[PlacementView]


class AdoptionReport(Answer):
    """Adoption per group and in total (rows are the report's plain data)."""

    by: str
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    placed_but_not_honoured: list[dict[str, Any]]
    start: date | None = Field(default=None, alias="from")
    to: date | None = None


class ComplianceMatrix(Answer):
    """Mandated lessons × teams."""

    lessons: list[str]
    teams: list[str]
    cells: list[dict[str, Any]]


class Evidence(Answer):
    """One cell's evidence chains."""

    cell: dict[str, Any] | None
    chains: list[dict[str, Any]]


class Flag(Answer):
    """A revision flag on a rule or lesson."""

    kind: str
    subject: str
    flagged_at: str
    measured: dict[str, Any]
    open: bool
    cleared_at: str | None
    cleared_by: str | None


class Approval(BaseModel):
    """The transferability check a reviewer records (every field optional)."""

    model_config = ConfigDict(extra="ignore")

    notes: str = ""
    applicability: dict[str, Any] | None = Field(
        default=None, description="Where it applies (see Lesson.applicability)."
    )
    mandate: Mandate | None = None


class LessonDraft(BaseModel):
    """A new draft lesson as a client sends it; who captured it, when, its version and status
    are the server's to set. Each part is checked as the `Lesson` it becomes."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="A stable slug, e.g. derive-pool-size.")
    title: str
    statement: str = Field(description="The transferable statement.")
    owner: str = Field(description="The team that owns the lesson.")
    form: LessonForm | None = None
    provenance: dict[str, Any] | None = Field(
        default=None, description="Source incidents and evidence links (see Lesson)."
    )
    context: dict[str, Any] | None = None
    applicability: dict[str, Any] | None = None
    mandate: Mandate | None = None
    checklist: list[dict[str, Any]] | None = None
    training: dict[str, Any] | None = None
    review_by: date | None = None
    authors: list[str] | None = None
    severity_rank: int | None = None


class LessonChanges(BaseModel):
    """Fields of a draft or a lesson in review to change; those not sent stay as they are."""

    model_config = ConfigDict(extra="allow")

    title: str | None = None
    statement: str | None = None
    owner: str | None = None
    form: LessonForm | None = None
    context: dict[str, Any] | None = None
    applicability: dict[str, Any] | None = None
    mandate: Mandate | None = None
    checklist: list[dict[str, Any]] | None = None
    training: dict[str, Any] | None = None
    review_by: date | None = None
    severity_rank: int | None = None


class LessonDetail(Lesson):
    """A lesson's working copy and the versions published so far."""

    published_versions: list[int]


class RetiredLesson(Lesson):
    """A retired lesson and how many open placements were withdrawn."""

    withdrawn_placements: int


class LessonHit(Lesson):
    """A lesson found by search, with its score."""

    score: float


class LessonPage(Answer):
    """A search page."""

    q: str | None
    total: int
    offset: int
    limit: int
    next_offset: int | None
    facets: dict[str, Any]
    hits: list[LessonHit]


class RecurrenceView(Answer):
    """A later incident where the lesson applied, and what its placements did."""

    incident_ref: str
    lesson_id: str
    lesson_version: int
    matched_on: MatchedOn
    placements: list[PlacementOutcome]
    placed: bool
    placement_states: dict[str, int]


class ImportReport(Answer):
    """What an import did (or, dry run, would do)."""

    dry_run: bool
    changed: bool
    summary: str
    created: list[str]
    updated: list[str]
    unchanged: list[str]


class Requeued(Answer):
    """How many dead letters were given fresh attempts."""

    requeued: int


class QueueStatus(Answer):
    """Messages per status and the newest dead letters."""

    counts: dict[str, int]
    dead: list[dict[str, Any]]


class TeamCounts(Answer):
    """What a team change did."""

    team: str
    added: int
    changed: int
    removed: int


class TeamsImported(Answer):
    """Per team, what the import did."""

    teams: dict[str, dict[str, int]]
    changed: bool
