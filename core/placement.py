"""Placement (a lesson embedded in a work item) and Signal (what became of it)."""

from enum import StrEnum

from pydantic import Field

from core.base import CoreModel, Name, Text, UtcDateTime
from core.lesson import Mandate
from core.work import WorkRef


class EmbeddingForm(StrEnum):
    """The shape a lesson takes inside its target."""

    JIRA_CHECKLIST = "jira.checklist"
    JIRA_SUBTASK = "jira.subtask"
    GITHUB_PR_CHECKLIST = "github.pr_checklist"
    GITHUB_PR_TEMPLATE = "github.pr_template"
    LMS_ASSIGNMENT = "lms.assignment"


GROUPABLE = frozenset(EmbeddingForm) - {EmbeddingForm.LMS_ASSIGNMENT}
"""Forms that are an item of a work item's checklist (a sub-task included): past the fatigue
budget, their placements are grouped. A training assignment is never grouped."""


class PlacementState(StrEnum):
    """planned → embedded → completed | dismissed | overdue | withdrawn | failed."""

    PLANNED = "planned"
    EMBEDDED = "embedded"
    COMPLETED = "completed"
    DISMISSED = "dismissed"
    OVERDUE = "overdue"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"


class Placement(CoreModel):
    """A lesson version placed in a work item by a rule, with form, mandate, due date and state."""

    id: Name
    lesson_id: Name
    lesson_version: int = Field(ge=1)
    work_item_ref: WorkRef
    rule_id: Name
    rule_set_version: Name
    form: EmbeddingForm
    mandate: Mandate
    due_at: UtcDateTime | None = None
    state: PlacementState = PlacementState.PLANNED
    handle: str | None = Field(default=None, description="Marker id, sub-task key, assignment id.")
    text: Text = Field(default="", description="The item text the rule's template rendered.")
    reason: Text | None = Field(default=None, description="Why it was dismissed or failed.")
    grouped: bool = Field(
        default=False,
        description="Placed past the work item's fatigue budget: shown inside one grouped item "
        "that links to the work item's list of lessons, not as an item of its own. Still "
        "tracked, signalled and reported as its own placement.",
    )
    observed_at: UtcDateTime | None = Field(
        default=None,
        description="When the observation behind the current state was made in the target "
        "(None until a mark is observed): an older observation arriving later does not undo it.",
    )
    reminded_at: UtcDateTime | None = Field(
        default=None, description="When the last overdue reminder was posted on the work item."
    )
    reminders: int = Field(default=0, ge=0, description="Overdue reminders posted so far.")
    placed_version: int | None = Field(
        default=None,
        ge=1,
        description="The lesson version first placed, once a revision updated the item to "
        "`lesson_version` (None: never revised). The id keeps naming the first version.",
    )
    reopened: Text | None = Field(
        default=None,
        description="Why a revision put the ticked item back to open (`replace_and_reopen`).",
    )
    created_at: UtcDateTime
    updated_at: UtcDateTime

    @property
    def effect_id(self) -> str:
        """Identity of the side effect, stable across retries and revisions (it names the
        version first placed)."""
        first = self.placed_version or self.lesson_version
        return f"{self.lesson_id}@{first}|{self.work_item_ref}|{self.form.value}"


class SignalKind(StrEnum):
    """Back-channel events about a placement."""

    TICKED = "ticked"
    UNTICKED = "unticked"
    DISMISSED = "dismissed"
    SUBTASK_DONE = "subtask_done"
    MERGED_UNCHECKED = "merged_unchecked"
    RESOLVED_UNCHECKED = "resolved_unchecked"
    MERGED_CLEAN = "merged_clean"
    """The work item merged with this item ticked: the lesson was applied (verified)."""
    RESOLVED_CLEAN = "resolved_clean"
    """The work item was resolved with this item ticked (verified)."""
    TRAINING_COMPLETED = "training_completed"
    """The learner completed or passed the lesson's training (verified)."""
    TRAINING_FAILED = "training_failed"
    """The learner failed the training; the assignment stays open."""


class Signal(CoreModel):
    """Who did what to a placement, when, and through which delivery."""

    id: Name
    placement_id: Name
    kind: SignalKind
    actor: Name | None = None
    at: UtcDateTime
    reason: Text | None = None
    delivery_id: Name | None = None
    lesson_version: int | None = Field(
        default=None,
        ge=1,
        description="The lesson version the item showed when the signal came (None: recorded "
        "before signals carried it).",
    )
