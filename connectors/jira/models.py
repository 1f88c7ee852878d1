"""Jira Cloud webhook payloads, tolerantly: only the fields Cairn reads, unknown ones ignored."""

from typing import Any

from pydantic import Field

from connectors.base import VendorModel


class Vendor(VendorModel):
    """Base of Jira payload models: tolerant (see `VendorModel`), nothing frozen."""


class Named(Vendor):
    """Anything Jira names: a component, an issue type, a resolution."""

    id: str | None = None
    name: str | None = None


class IssueType(Named):
    """`fields.issuetype`; `subtask` tells a sub-task apart."""

    subtask: bool = False


class StatusCategory(Vendor):
    """`new`, `indeterminate` or `done`."""

    key: str | None = None


class Status(Named):
    """`fields.status` with its category."""

    statusCategory: StatusCategory | None = None


class Project(Vendor):
    """`fields.project`."""

    key: str | None = None


class User(Vendor):
    """A Jira Cloud user; `accountId` is the stable identity."""

    accountId: str | None = None
    displayName: str | None = None


class ParentRef(Vendor):
    """`fields.parent` of a sub-task."""

    key: str | None = None


class IssueFields(Vendor):
    """The issue fields a webhook carries (REST v2 shapes: the description is not ADF)."""

    summary: str | None = None
    issuetype: IssueType | None = None
    project: Project | None = None
    status: Status | None = None
    resolution: Named | None = None
    labels: list[Any] = Field(default_factory=list)
    components: list[Any] = Field(default_factory=list)
    assignee: User | None = None
    parent: ParentRef | None = None


class Issue(Vendor):
    """`issue` in an issue event."""

    id: str | None = None
    key: str
    self_url: str | None = Field(default=None, alias="self")
    fields: IssueFields = Field(default_factory=IssueFields)


class ChangeItem(Vendor):
    """One changed field in `changelog.items`."""

    field: str | None = None
    fieldId: str | None = None
    to: str | None = None
    toString: str | None = None

    @property
    def name(self) -> str:
        """The field's id, or its display name when no id is given (both lower-cased)."""
        return (self.fieldId or self.field or "").lower()


class Changelog(Vendor):
    """`changelog` of `jira:issue_updated`."""

    id: str | None = None
    items: list[ChangeItem] = Field(default_factory=list)


class IssueEvent(Vendor):
    """`jira:issue_created` / `jira:issue_updated` / `jira:issue_deleted`."""

    webhookEvent: str
    timestamp: int | None = None
    user: User | None = None
    issue: Issue
    changelog: Changelog | None = None
