"""The rule language as strict pydantic models: packs of rules, conditions and actions."""

import re
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from core.gate import Gate
from core.incident import Severity
from core.lesson import LessonForm, Mandate
from core.placement import EmbeddingForm
from core.work import System
from rules import template

_DURATION = re.compile(r"^(\d+)([hdw])$")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> timedelta:
    """`48h`, `14d`, `2w` → timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 48h, 14d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_duration(window: timedelta) -> str:
    """The shortest of `2w`, `14d` or `48h` that states `window` exactly."""
    hours = int(window.total_seconds()) // 3600
    if hours % (24 * 7) == 0:
        return f"{hours // (24 * 7)}w"
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[str, AfterValidator(_check_duration)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
Values = tuple[Annotated[str, Field(min_length=1, max_length=200)], ...]


class RuleModel(BaseModel):
    """Rule files are strict: an unknown key is an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LessonCondition(RuleModel):
    """Which lessons a rule selects; every given field must match, any listed value matches."""

    tags: Values = ()
    services: Values = ()
    components: Values = ()
    forms: tuple[LessonForm, ...] = ()
    mandates: tuple[Mandate, ...] = ()
    owners: Values = Field(default=(), description="Lesson owner (person or team).")
    ids: Values = Field(default=(), description="Specific lesson ids.")
    min_severity: Severity | None = Field(
        default=None, description="The lesson's worst source incident is at least this severe."
    )


class WorkItemCondition(RuleModel):
    """Which work items a rule applies to; globs allowed in `projects` and `paths`."""

    systems: tuple[System, ...] = ()
    projects: Values = Field(default=(), description="Repo `owner/name` or Jira key; globs.")
    paths: Values = Field(default=(), description="Changed paths; `**` spans directories.")
    labels: Values = ()
    components: Values = ()
    types: Values = Field(default=(), description="Issue types or `pull_request`.")
    base_branches: Values = ()
    teams: Values = ()


class Audience(StrEnum):
    """Who an embedded item is for."""

    ASSIGNEE = "assignee"
    AUTHOR = "author"
    TEAM = "team"
    REVIEWERS = "reviewers"


class Action(RuleModel):
    """What to do with a selected lesson in a matching work item."""

    form: EmbeddingForm | None = Field(
        default=None,
        description="Where the lesson goes: an item in the work item (`jira.*`, `github.*`), or "
        "`lms.assignment`: training in the LMS. On learner work items (`systems: [lms]`) it "
        "trains that learner; on a GitHub pull request or a Jira issue it trains the work "
        "item's assignee (the member of the team map with that `github` login or `jira` account "
        "id), once per lesson version and learner, and puts nothing in the PR or ticket.",
    )
    suppress: bool = Field(default=False, description="Do not place the lesson (an opt-out).")
    mandate: Mandate | None = Field(default=None, description="Default: the lesson's own.")
    due: Duration | None = Field(default=None, description="Due window such as 14d.")
    audience: Audience = Audience.ASSIGNEE
    text: str = Field(
        default="{{ lesson.title }}: {{ lesson.statement }}",
        max_length=4000,
        description="Item text template; variables: lesson, work_item, rule, due.",
    )

    @field_validator("text")
    @classmethod
    def _template_is_valid(cls, text: str) -> str:
        template.check(text)
        return text

    @model_validator(mode="after")
    def _form_or_suppress(self) -> "Action":
        if self.suppress == (self.form is not None):
            raise ValueError("give exactly one of `form` or `suppress: true`")
        return self

    @property
    def due_window(self) -> timedelta | None:
        """The due window as a timedelta."""
        return None if self.due is None else parse_duration(self.due)


class FlagAction(StrEnum):
    """What an open revision flag on a rule does to the placements it would make."""

    NONE = "none"
    SUPPRESS_ADVISORY = "suppress_advisory"


class OnRevision(StrEnum):
    """What a new published version of a lesson does to the rule's open placements."""

    UPDATE = "update"
    KEEP = "keep"
    REPLACE_AND_REOPEN = "replace_and_reopen"


class Rule(RuleModel):
    """Lessons × work items → an embedding, with a priority among competing rules."""

    id: Id
    description: str = ""
    priority: int | None = Field(default=None, ge=0, le=1_000_000)
    lesson: LessonCondition = LessonCondition()
    work_item: WorkItemCondition = WorkItemCondition()
    override_applicability: bool = Field(
        default=False, description="Place even where the lesson's author says it does not apply."
    )
    flag_action: FlagAction = Field(
        default=FlagAction.NONE,
        description="While the rule is flagged for revision (low precision): `suppress_advisory` "
        "stops its invited placements until someone clears the flag.",
    )
    gate: Gate = Field(
        default=Gate.WARN,
        description="What the rule's open required items do to a pull request's `Cairn "
        "lessons` check run: `block` fails it (branch protection that requires the check "
        "stops the merge), `warn` keeps it neutral and lists them, `off` leaves them out. "
        "Ticked, dismissed with a reason or waived items count as done.",
    )
    on_revision: OnRevision = Field(
        default=OnRevision.UPDATE,
        description="When a newer version of a placed lesson is published: `update` rewrites "
        "the open item to the new text, marked `updated to vN`, keeping its tick; `keep` "
        "leaves the text it was placed with; `replace_and_reopen` rewrites it and puts a "
        "ticked required item back to open, with the reason shown.",
    )

    @field_validator("gate", mode="before")
    @classmethod
    def _unquoted_off(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted `off` as false: take it as the word that was written.
        return Gate.OFF if value is False else value

    then: Action

    def form_systems(self) -> frozenset[str]:
        """The systems whose work items the rule's form can go into: the form's own, and for
        `lms.assignment` also the ticket and PR systems the rule names in `work_item.systems`
        (work-driven: the work item's assignee is trained). Empty without a form."""
        form = self.then.form
        if form is None:
            return frozenset()
        own = form.value.split(".", 1)[0]
        if form == EmbeddingForm.LMS_ASSIGNMENT:
            return frozenset({own, *(s.value for s in self.work_item.systems)})
        return frozenset({own})

    @model_validator(mode="after")
    def _form_fits_systems(self) -> "Rule":
        form, systems = self.then.form, self.work_item.systems
        if form and systems and self.form_systems().isdisjoint(s.value for s in systems):
            raise ValueError(f"form {form.value} cannot be placed in {systems}")
        return self


class Level(StrEnum):
    """Organisation packs set defaults; team packs refine them and win ties."""

    ORGANISATION = "organisation"
    TEAM = "team"


class Budget(RuleModel):
    """The fatigue budget: how many lesson items one work item may carry."""

    max_items_per_work_item: int = Field(default=5, ge=1, le=100)


class Pack(RuleModel):
    """One rule file: a pack of rules owned by the organisation or by a team."""

    pack: Id
    level: Level = Level.ORGANISATION
    team: str | None = None
    priority: int = Field(default=100, ge=0, le=1_000_000)
    budget: Budget | None = None
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _team_pack_names_team(self) -> "Pack":
        if (self.level == Level.TEAM) != (self.team is not None):
            raise ValueError("a team pack names its `team`; an organisation pack does not")
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"rule ids repeat within the pack: {duplicates}")
        return self
