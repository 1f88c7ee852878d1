"""Lessons from GitHub work: closed issues and discussions, and files a merged pull request
adds, as capture candidates; the reads and the optional comment capture makes.

`parse` offers every closed issue or discussion (and its later edits and labels) and every
merged pull request; which ones become drafts (the `lesson` label, paths like
`docs/postmortems/*.md`) is the capture stage's setting. The reader lists a merged pull
request's files through PyGithub and reads each matching one at the merge commit; for an issue
it adds the commenters. The notifier posts one comment carrying a hidden marker, read back
first so a retry never posts twice.
"""

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from wcmatch import glob

from connectors import fields
from connectors.base import load_json
from connectors.github.retry import call
from connectors.github.target import GitHubTarget
from connectors.github.webhook import header
from core.errors import PayloadError
from core.work_capture import CaptureEvent, Person, SourceDocument, SourceKind

MARKER = "<!-- cairn:capture:{lesson} -->"
TEAM_PREFIX = "team:"
_GLOB = glob.GLOBSTAR | glob.DOTGLOB | glob.BRACE
MAX_FILES = 50
"""Matching files read from one merged pull request (each is a draft of its own)."""


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Account(_Vendor):
    login: str


class _Label(_Vendor):
    name: str


class _Thread(_Vendor):
    """An issue or a discussion as its webhook shows it."""

    number: int
    title: str = ""
    body: str | None = None
    html_url: str | None = None
    state: str = "open"
    updated_at: str | None = None
    user: _Account | None = None
    assignees: list[_Account] = Field(default_factory=list)
    labels: list[_Label] = Field(default_factory=list)
    pull_request: dict[str, Any] | None = None


class _Pull(_Vendor):
    number: int
    html_url: str | None = None
    title: str = ""
    merged: bool | None = None
    merge_commit_sha: str | None = None
    user: _Account | None = None
    merged_by: _Account | None = None
    labels: list[_Label] = Field(default_factory=list)
    updated_at: str | None = None


class _Repository(_Vendor):
    full_name: str


THREAD_ACTIONS = frozenset({"closed", "edited", "labeled"})


def parse(headers: Mapping[str, str], body: bytes) -> list[CaptureEvent]:
    """A capture candidate for a closed issue or discussion, or a merged pull request."""
    event = header(headers, "X-GitHub-Event") or ""
    if event not in ("issues", "discussion", "pull_request"):
        return []
    raw = load_json(body)
    if not isinstance(raw, dict) or not isinstance(raw.get("repository"), dict):
        return []
    action = raw.get("action")
    try:
        repo = _Repository.model_validate(raw["repository"]).full_name
        if event == "pull_request":
            if action != "closed":
                return []
            pull = _Pull.model_validate(raw.get("pull_request"))
            return [] if not pull.merged else [_event(_pull(repo, pull))]
        if action not in THREAD_ACTIONS:
            return []
        thread = _Thread.model_validate(raw.get("issue" if event == "issues" else "discussion"))
    except ValidationError:
        return []  # not a shape Cairn reads; acknowledged like any other event
    if thread.state != "closed" or thread.pull_request is not None:
        return []
    kind = SourceKind.ISSUE if event == "issues" else SourceKind.DISCUSSION
    return [_event(_thread(repo, thread, kind))]


def _event(document: SourceDocument) -> CaptureEvent:
    return CaptureEvent(type="capture", document=document)


def _labels(labels: list[_Label]) -> tuple[str, ...]:
    return fields.names(label.name for label in labels)


def _team(labels: Sequence[str]) -> str | None:
    for label in labels:
        if label.lower().startswith(TEAM_PREFIX) and label[len(TEAM_PREFIX) :].strip():
            return label[len(TEAM_PREFIX) :].strip()
    return None


def _document(data: dict[str, Any]) -> SourceDocument:
    try:
        return SourceDocument.model_validate(data, strict=False)
    except ValidationError as exc:
        raise PayloadError(f"{data.get('ref')}: {exc.error_count()} unusable fields") from exc


def _thread(repo: str, thread: _Thread, kind: SourceKind) -> SourceDocument:
    people = [Person(login=thread.user.login, role="author")] if thread.user else []
    people += [Person(login=a.login, role="assignee") for a in thread.assignees]
    labels = _labels(thread.labels)
    sep = "#" if kind == SourceKind.ISSUE else "/discussions/"
    return _document(
        {
            "system": "github",
            "kind": kind,
            "ref": f"github:{repo}{sep}{thread.number}",
            "version": fields.name(thread.updated_at) or "unknown",
            "title": fields.name(thread.title) or f"{repo}{sep}{thread.number}",
            "url": fields.url(thread.html_url),
            "project": repo,
            "labels": labels,
            "body": fields.text(thread.body),
            "people": _unique(people),
            "team": _team(labels),
        }
    )


def _pull(repo: str, pull: _Pull) -> SourceDocument:
    people = [Person(login=pull.user.login, role="author")] if pull.user else []
    if pull.merged_by is not None:
        people.append(Person(login=pull.merged_by.login, role="merger"))
    labels = _labels(pull.labels)
    return _document(
        {
            "system": "github",
            "kind": SourceKind.PULL,
            "ref": f"github:{repo}#{pull.number}",
            "version": fields.name(pull.merge_commit_sha) or fields.name(pull.updated_at) or "-",
            "title": fields.name(pull.title) or f"{repo}#{pull.number}",
            "url": fields.url(pull.html_url),
            "project": repo,
            "labels": labels,
            "people": _unique(people),
            "team": _team(labels),
            "merge_sha": fields.name(pull.merge_commit_sha),
        }
    )


def _unique(people: list[Person]) -> list[Person]:
    seen: dict[str, Person] = {}
    for person in people:
        seen.setdefault(person.login.casefold(), person)
    return list(seen.values())


def _title(path: str) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.replace("-", " ").replace("_", " ").strip().capitalize() or path


class GitHubSourceReader:
    """Reads a source's files or commenters through PyGithub; posts the author's note."""

    def __init__(self, target: GitHubTarget, paths: Sequence[str]) -> None:
        self.target = target
        self.paths = tuple(paths)

    def __repr__(self) -> str:
        return f"GitHubSourceReader({self.target!r}, paths={self.paths!r})"

    def _repo(self, source: SourceDocument) -> Any:
        return self.target._client().get_repo(source.project)  # lazy: no request

    def read(self, source: SourceDocument) -> list[SourceDocument]:
        """A merged pull request: one document per matching file; an issue: with commenters."""
        if source.kind == SourceKind.PULL:
            return self._files(source)
        if source.kind == SourceKind.ISSUE:
            number = int(source.ref.rsplit("#", 1)[1])

            def commenters() -> list[str]:
                issue = self._repo(source).get_issue(number)
                return [c.user.login for c in issue.get_comments() if c.user is not None]

            logins = call(f"read the comments of {source.ref}", commenters, self.target.policy)
            people = [*source.people, *(Person(login=n, role="commenter") for n in logins)]
            data = {**source.model_dump(mode="json"), "people": _unique(people)}
            return [_document(data)]
        return [source]

    def _files(self, source: SourceDocument) -> list[SourceDocument]:
        number = int(source.ref.rsplit("#", 1)[1])

        def listed() -> list[tuple[str, str]]:
            pull = self._repo(source).get_pull(number)
            found = []
            for changed in pull.get_files():
                if changed.status in ("added", "modified", "renamed") and glob.globmatch(
                    changed.filename, self.paths, flags=_GLOB
                ):
                    found.append((changed.filename, changed.status))
                if len(found) >= MAX_FILES:
                    break
            return found

        if not self.paths:
            return []
        matching = call(f"list the files of {source.ref}", listed, self.target.policy)
        documents = []
        for path, status in matching:

            def content(path: str = path) -> tuple[str, str, str | None]:
                found = self._repo(source).get_contents(path, ref=source.merge_sha or "HEAD")
                if isinstance(found, list):
                    raise PayloadError(f"{path} is a directory")
                text = found.decoded_content.decode("utf-8", "replace")
                return text, found.sha, found.html_url

            text, sha, html_url = call(f"read {path}", content, self.target.policy)
            data = {
                **source.model_dump(mode="json"),
                "kind": SourceKind.FILE,
                "ref": f"github:{source.project}:{path}",
                "version": sha,
                "title": _title(path),
                "url": fields.url(html_url),
                "body": fields.text(text),
                "evidence_links": [str(source.url)] if source.url else [],
                "refresh_only": status != "added",
            }
            documents.append(_document(data))
        return documents

    def notify(self, source: SourceDocument, lesson_id: str, url: str) -> bool:
        """Comment on the issue or pull request with the draft's link; False when the comment
        is there already (or the source is a discussion, which the REST API cannot comment on)."""
        if source.kind == SourceKind.DISCUSSION:
            return False
        number = int(source.ref.split("#", 1)[1]) if "#" in source.ref else None
        if number is None:
            pull_ref = next((str(u) for u in source.evidence_links if "/pull/" in str(u)), "")
            if not pull_ref:
                return False
            number = int(pull_ref.rstrip("/").rsplit("/", 1)[1])
        marker = MARKER.format(lesson=lesson_id)
        issue = self._repo(source).get_issue(number)

        def present() -> bool:
            return any(marker in (c.body or "") for c in issue.get_comments())

        if call(f"read the comments of {source.ref}", present, self.target.policy):
            return False
        body = f"Cairn captured this as a draft lesson for review: {url}\n\n{marker}"
        once = replace(self.target.policy, attempts=1)
        call(f"comment on {source.ref}", lambda: issue.create_comment(body), once)
        return True
