"""Lessons in a repository's pull-request template, changed only through a pull request.

Each repository's template is a work item of its own, `github:owner/repo:template`. `embed`
makes the template show its entries inside the same marker-fenced section pull-request bodies
use (`connectors.github.section`), on Cairn's branch `cairn/lessons`, through ONE open pull
request per repository: a change while that pull request is open is another commit on it, so
every pending lesson for the repository lands in the same review.

The template is the repository's existing one when there is one (`.github/`, `docs/`, the root,
then the first file of `.github/PULL_REQUEST_TEMPLATE/`), else `.github/pull_request_template.md`
is created. An item placed before (it has a handle) that is no longer in the working copy was
turned down (its pull request closed unmerged) or removed by hand after the merge: it is not
put back. When the default branch's section is not what Cairn would render for the items it
shows, a person edited it: the result says so and the pull request's body warns the reviewer;
nothing reaches the default branch but through the pull request.

Write economy: reads are bounded (the repository, its open pull request, at most four template
locations, the branches), and a change costs at most three writes (the branch made or reset, the
file, the pull request made or its body updated); a call that finds the file already right
writes nothing.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from github import Github
from github.GithubException import GithubException, UnknownObjectException
from github.PullRequest import PullRequest
from github.Repository import Repository

from connectors.github import section
from connectors.github.retry import call
from connectors.retrying import RetryPolicy
from connectors.target import EmbedEntry, EmbedResult
from core.errors import PayloadError, TransientError
from core.work import System, WorkItem

BRANCH = "cairn/lessons"
"""The branch Cairn's template pull requests come from (one per repository)."""
TYPE = "pull_request_template"
"""The work item type of a repository's template."""
_SUFFIX = ":template"
DEFAULT_PATH = ".github/pull_request_template.md"
LOCATIONS = (DEFAULT_PATH, "docs/pull_request_template.md", "pull_request_template.md")
FOLDER = ".github/PULL_REQUEST_TEMPLATE"
TITLE = "Cairn: lessons in the pull request template"
INTRO = (
    "Cairn keeps the lessons below in this repository's pull request template, so every new "
    "pull request starts with them. Merge to adopt them; close with a comment to turn them down."
)
EDITED = (
    "**Note:** the lessons section on `{branch}` was edited by hand since Cairn last changed it; "
    "merging this pull request replaces that edit. Review the diff."
)


def ref(repo: str) -> str:
    """The work item ref of a repository's pull-request template."""
    return f"github:{repo}{_SUFFIX}"


def is_template(work_ref: str) -> bool:
    """Whether a work item ref names a repository's pull-request template."""
    return work_ref.startswith("github:") and work_ref.endswith(_SUFFIX)


def repository(work_ref: str) -> str:
    """`owner/repo` of a template ref."""
    if not is_template(work_ref):
        raise PayloadError(f"{work_ref!r} is not a template ref (github:owner/repo:template)")
    return work_ref.removeprefix("github:").removesuffix(_SUFFIX)


def work_item(repo: str) -> WorkItem:
    """The work item standing for `repo`'s pull-request template."""
    return WorkItem(
        system=System.GITHUB,
        ref=ref(repo),
        url=None,
        project=repo,
        type=TYPE,
        title="Pull request template",
    )


def is_own_branch(head_ref: str | None) -> bool:
    """Whether a pull request comes from Cairn's template branch."""
    return head_ref == BRANCH


@dataclass(frozen=True, slots=True)
class TemplateResult(EmbedResult):
    """An embed into a template; `edited_by_hand` when the default branch's section differed
    from what Cairn renders for it, `pull` the template pull request's number (None: no write)."""

    edited_by_hand: bool = False
    pull: int | None = None
    path: str | None = None


@dataclass
class _File:
    path: str
    text: str
    sha: str | None


def _missing(exc: GithubException) -> bool:
    return isinstance(exc, UnknownObjectException) or exc.status == 404


class TemplateWriter:
    """Embeds into pull-request templates through a PyGithub client (the GitHub target's)."""

    def __init__(self, client: Any, policy: RetryPolicy) -> None:
        self._client = client
        self.policy = policy

    def _github(self) -> Github:
        client: Github = self._client()
        return client

    def _read(self, repo: Repository, path: str, branch: str) -> _File | None:
        def read() -> _File | None:
            try:
                found = repo.get_contents(path, ref=branch)
            except GithubException as exc:
                if _missing(exc):
                    return None
                raise
            if isinstance(found, list):
                return None
            return _File(path, found.decoded_content.decode(), found.sha)

        return call(f"read {path} on {branch}", read, self.policy)

    def _find(self, repo: Repository, branch: str) -> tuple[_File | None, int]:
        """The repository's template on `branch` (None: it has none), and the reads it took."""
        reads = 0
        for path in LOCATIONS:
            reads += 1
            found = self._read(repo, path, branch)
            if found is not None:
                return found, reads

        def listing() -> list[str]:
            try:
                found = repo.get_contents(FOLDER, ref=branch)
            except GithubException as exc:
                if _missing(exc):
                    return []
                raise
            listed = found if isinstance(found, list) else [found]
            return sorted(f.path for f in listed if f.type == "file" and f.path.endswith(".md"))

        paths = call(f"list {FOLDER}", listing, self.policy)
        reads += 1
        if not paths:
            return None, reads
        return self._read(repo, paths[0], branch), reads + 1

    def _write(self, what: str, fn: Any) -> Any:
        """A write made once: a conflict (someone moved the branch or opened the pull request
        meanwhile) is transient, so the pipeline's retry reads everything again."""

        def once() -> Any:
            try:
                return fn()
            except GithubException as exc:
                if exc.status in (409, 422):
                    raise TransientError(f"{what}: GitHub answered {exc.status}") from exc
                raise

        return call(what, once, replace(self.policy, attempts=1))

    def embed(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> TemplateResult:
        """Make the template show `entries` through Cairn's pull request; write only what
        differs (see the module's docstring)."""
        name = repository(item.ref)
        owner = name.split("/")[0]
        repo = self._github().get_repo(name)  # lazy: no request
        default = call(f"read {name}", lambda: repo.default_branch, self.policy)

        def open_pull() -> PullRequest | None:
            return next(iter(repo.get_pulls(state="open", head=f"{owner}:{BRANCH}")), None)

        pull = call(f"list the template pull requests of {name}", open_pull, self.policy)
        # An open pull request is the working copy; otherwise the default branch is.
        working, found_reads = self._find(repo, default if pull is None else BRANCH)
        reads = 2 + found_reads
        base = working if pull is None else None
        path = DEFAULT_PATH if working is None else working.path
        current = "" if working is None else working.text
        shown = {o.placement_id for o in section.observe(current)}
        kept = [e for e in entries if e.withdrawn or e.handle is None or e.placement_id in shown]
        wanted = section.apply(current, kept)
        handles = {e.placement_id: section.handle(e) for e in kept if not e.withdrawn}
        result = TemplateResult(handles=handles, reads=reads, path=path)
        if wanted == current:
            return replace(result, pull=None if pull is None else pull.number)
        if pull is None:
            default_text = "" if base is None else base.text
            placed = {o.placement_id for o in section.observe(default_text)}
            as_placed = [e for e in entries if e.placement_id in placed and not e.withdrawn]
            edited = section.apply(default_text, as_placed) != default_text
        else:  # found when the pull request was opened; its body keeps saying so
            edited = EDITED.format(branch=default) in (pull.body or "")
        writes = 0
        if pull is None:
            writes += self._branch(repo, default)
            reads += 2
            on_branch = base  # the branch was just made (or reset) from the default branch
        else:
            on_branch = working
        message = f"Cairn: lessons in {path}"
        if on_branch is None:
            self._write(
                f"create {path} on {BRANCH}",
                lambda: repo.create_file(path, message, wanted, branch=BRANCH),
            )
        else:
            sha = on_branch.sha or ""
            self._write(
                f"update {path} on {BRANCH}",
                lambda: repo.update_file(path, message, wanted, sha, branch=BRANCH),
            )
        writes += 1
        body = self._body(wanted, default, edited)
        if pull is None:
            made = self._write(
                f"open the template pull request of {name}",
                lambda: repo.create_pull(base=default, head=BRANCH, title=TITLE, body=body),
            )
            number = int(made.number)
        else:
            existing = pull
            if (existing.body or "") != body:
                self._write(
                    f"edit the template pull request of {name}",
                    lambda: existing.edit(body=body),
                )
                writes += 1
            number = existing.number
        writes += 1 if pull is None else 0
        return replace(result, writes=writes, reads=reads, edited_by_hand=edited, pull=number)

    def _branch(self, repo: Repository, default: str) -> int:
        """Make Cairn's branch point at the default branch's head (made, or reset after its last
        pull request ended); one write."""
        head = call(
            f"read {default}", lambda: repo.get_git_ref(f"heads/{default}").object.sha, self.policy
        )

        def existing() -> Any:
            try:
                found = repo.get_git_ref(f"heads/{BRANCH}")
                return found if found.object is not None else None
            except GithubException as exc:
                if _missing(exc):
                    return None
                raise

        branch = call(f"read {BRANCH}", existing, self.policy)
        if branch is None:
            self._write(
                f"create {BRANCH}", lambda: repo.create_git_ref(f"refs/heads/{BRANCH}", head)
            )
        else:
            self._write(f"reset {BRANCH}", lambda: branch.edit(head, force=True))
        return 1

    @staticmethod
    def _body(wanted: str, default: str, edited: bool) -> str:
        """The pull request's body: what it is, the warning when a person edited the section,
        and the section itself (its markers name the placements a merge or a close speaks for)."""
        lessons = section.extract(wanted) or ""
        parts = [INTRO]
        if edited:
            parts.append(EDITED.format(branch=default))
        parts.append(lessons)
        return "\n\n".join(p for p in parts if p)
