"""GitHub's webhook payloads as far as Cairn reads them (tolerant: unknown fields are ignored)."""

from pydantic import Field

from connectors.base import VendorModel


class Vendor(VendorModel):
    """Base of GitHub payload models: tolerant (see `VendorModel`), nothing frozen."""


class Account(Vendor):
    """A user, bot or organisation."""

    login: str


class Label(Vendor):
    """A label on a pull request."""

    name: str


class RepositoryName(Vendor):
    """A repository as `head.repo` names it (null when a fork was deleted)."""

    full_name: str


class Branch(Vendor):
    """`head` or `base` of a pull request."""

    ref: str
    sha: str | None = None
    repo: RepositoryName | None = None


class PullRequest(Vendor):
    """A pull request, as in `pull_request` webhooks and `GET /repos/{o}/{r}/pulls/{n}`."""

    number: int
    html_url: str | None = None
    title: str = ""
    body: str | None = None
    state: str = "open"
    draft: bool = False
    merged: bool | None = None
    user: Account | None = None
    labels: list[Label] = Field(default_factory=list)
    base: Branch | None = None
    head: Branch | None = None
    updated_at: str | None = None


class Repository(Vendor):
    """The repository an event happened in."""

    full_name: str


class BodyChange(Vendor):
    """`changes.body` of an `edited` event: the body before the edit."""

    previous: str | None = Field(default=None, alias="from")


class Changes(Vendor):
    """`changes` of an `edited` event; only the body matters to Cairn."""

    body: BodyChange | None = None


class PullRequestEvent(Vendor):
    """The `pull_request` webhook."""

    action: str
    number: int | None = None
    pull_request: PullRequest
    repository: Repository
    sender: Account | None = None
    changes: Changes | None = None
