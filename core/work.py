"""WorkItem: the ticket, pull request or learning assignment a lesson can be placed into."""

from enum import StrEnum
from typing import Annotated

from pydantic import Field, HttpUrl, StringConstraints, model_validator

from core.base import CoreModel, Name


class System(StrEnum):
    """The outside systems Cairn places lessons into."""

    JIRA = "jira"
    GITHUB = "github"
    LMS = "lms"


WorkRef = Annotated[
    str,
    StringConstraints(pattern=r"^(jira|github|lms):[^\s\x00-\x1f\x7f]{1,300}$"),
]
"""A stable reference such as `github:acme/api#123` or `jira:PAY-42`."""


class WorkItem(CoreModel):
    """The target context a routing decision is made for."""

    system: System
    ref: WorkRef
    url: HttpUrl | None = None
    project: Name = Field(description="Jira project key, GitHub `owner/repo`, or LMS course.")
    type: Name = Field(description="Issue type, `pull_request`, or `course`.")
    title: str = ""
    labels: tuple[Name, ...] = ()
    components: tuple[Name, ...] = ()
    changed_paths: tuple[str, ...] = ()
    base_branch: Name | None = None
    team: Name | None = None
    assignee: Name | None = None

    @model_validator(mode="after")
    def _ref_matches_system(self) -> "WorkItem":
        if not self.ref.startswith(f"{self.system.value}:"):
            raise ValueError(f"ref {self.ref!r} does not belong to system {self.system.value!r}")
        return self
