"""The repository half of the GitHub contract fake: branches, file writes and opening PRs.

Serves what Cairn's pull-request template flow calls, with GitHub's answers to misuse:
`GET /repos/{o}/{r}` (with `default_branch`), `GET …/git/ref/heads/{b}`, `POST …/git/refs`
(422 when the branch exists), `PATCH …/git/refs/heads/{b}` (reset to the default branch),
`GET …/contents/{path}?ref=` on any branch (a folder lists its files), `PUT …/contents/{path}`
(409 on a stale `sha`, 422 when an existing file is written without one), `GET …/pulls`
(`state`, `head` filters) and `POST …/pulls` (422 while an open pull request has that head).
The default branch's files are `FakeGitHub.contents`; other branches hold copies. Merging a
pull request from a branch lands the branch's files on the default branch.
"""

import base64
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from connectors.github.fake import FakePull

Reply = tuple[int, Any, dict[str, str]]

_REPO = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)$")
_GET_REF = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/git/ref/heads/(?P<branch>.+)$")
_REFS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/git/refs$")
_EDIT_REF = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/git/refs/heads/(?P<branch>.+)$")
_CONTENTS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/contents/(?P<path>.+)$")
_PULLS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls$")


_COMMIT = re.compile(r"[0-9a-f]{40}")


def blob_sha(text: str) -> str:
    """Git's blob id of a file's text (what the contents API calls `sha`)."""
    raw = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()  # noqa: S324


class FakeRepositories:
    """Branches and file writes of the fake's repositories (mixed into `FakeGitHub`)."""

    if TYPE_CHECKING:  # what `FakeGitHub` provides
        url: str
        actor: str
        contents: dict[tuple[str, str], str]
        pulls: dict[tuple[str, int], FakePull]
        _numbers: Iterator[int]

        def pull_json(self, pull: "FakePull") -> dict[str, Any]: ...
        def _account(self, login: str) -> dict[str, Any]: ...
        def _event(self, pull: "FakePull", action: str, sender: str, **extra: Any) -> Any: ...

    def _repo_state(self) -> dict[tuple[str, str], dict[str, str]]:
        if not hasattr(self, "_branches"):
            self._branches: dict[tuple[str, str], dict[str, str]] = {}
        if not hasattr(self, "default_branches"):
            self.default_branches: dict[str, str] = {}
        return self._branches

    def default_branch(self, repo: str) -> str:
        """The repository's default branch (`main` unless set in `default_branches`)."""
        self._repo_state()
        return self.default_branches.get(repo, "main")

    def files(self, repo: str, branch: str | None = None) -> dict[str, str]:
        """The files of a branch (the default branch when None); path → text."""
        branches = self._repo_state()
        if branch is None or branch == self.default_branch(repo):
            return {path: text for (r, path), text in self.contents.items() if r == repo}
        return branches.get((repo, branch), {})

    def _known(self, repo: str) -> bool:
        self._repo_state()
        return (
            repo in self.default_branches
            or any(r == repo for r, _ in self.contents)
            or any(p.repo == repo for p in self.pulls.values())
        )

    def _branch_sha(self, repo: str, branch: str | None) -> str:
        files = self.files(repo, branch)
        return hashlib.sha1(json.dumps(sorted(files.items())).encode()).hexdigest()  # noqa: S324

    def _ref_json(self, repo: str, branch: str) -> dict[str, Any]:
        sha = self._branch_sha(repo, branch)
        return {
            "ref": f"refs/heads/{branch}",
            "url": f"{self.url}/repos/{repo}/git/refs/heads/{branch}",
            "object": {"sha": sha, "type": "commit", "url": f"{self.url}/commits/{sha}"},
        }

    def land(self, pull: "FakePull") -> None:
        """Merge a pull request's branch: its files become the default branch's."""
        branches = self._repo_state()
        files = branches.get((pull.repo, pull.head_ref))
        if files is None:
            return
        for path, text in files.items():
            self.contents[(pull.repo, path)] = text

    def repository(
        self, method: str, path: str, query: dict[str, list[str]], data: Any
    ) -> Reply | None:
        """The answer to a repository request, or None when the path is not one."""
        branches = self._repo_state()
        if (match := _REPO.match(path)) and method == "GET":
            repo = match["repo"]
            if not self._known(repo):
                return 404, {"message": "Not Found"}, {}
            owner, name = repo.split("/")
            return (
                200,
                {
                    "full_name": repo,
                    "name": name,
                    "owner": self._account(owner),
                    "url": f"{self.url}/repos/{repo}",
                    "html_url": f"https://github.com/{repo}",
                    "default_branch": self.default_branch(repo),
                },
                {},
            )
        if (match := _GET_REF.match(path)) and method == "GET":
            repo, branch = match["repo"], match["branch"]
            if branch != self.default_branch(repo) and (repo, branch) not in branches:
                return 404, {"message": "Not Found"}, {}
            return 200, self._ref_json(repo, branch), {}
        if (match := _REFS.match(path)) and method == "POST":
            repo, ref = match["repo"], str(data.get("ref", ""))
            branch = ref.removeprefix("refs/heads/")
            if not ref.startswith("refs/heads/") or not isinstance(data.get("sha"), str):
                return 422, {"message": "Validation Failed"}, {}
            if (repo, branch) in branches or branch == self.default_branch(repo):
                return 422, {"message": "Reference already exists"}, {}
            branches[(repo, branch)] = dict(self.files(repo))
            return 201, self._ref_json(repo, branch), {}
        if (match := _EDIT_REF.match(path)) and method == "PATCH":
            repo, branch = match["repo"], match["branch"]
            if (repo, branch) not in branches:
                return 422, {"message": "Reference does not exist"}, {}
            if data.get("sha") != self._branch_sha(repo, None):
                return 422, {"message": "Object does not exist"}, {}
            branches[(repo, branch)] = dict(self.files(repo))
            return 200, self._ref_json(repo, branch), {}
        if match := _CONTENTS.match(path):
            return self._contents(method, match["repo"], match["path"], query, data)
        if match := _PULLS.match(path):
            return self._pulls(method, match["repo"], query, data)
        return None

    def _contents(
        self,
        method: str,
        repo: str,
        path: str,
        query: dict[str, list[str]],
        data: Any,
    ) -> Reply | None:
        from urllib.parse import unquote

        path = unquote(path)
        branch = query.get("ref", [None])[0] if method == "GET" else data.get("branch")
        on_default = branch is None or branch == self.default_branch(repo)
        if method == "GET" and branch is not None and _COMMIT.fullmatch(branch):
            # The fake keeps no history: a commit reads as the default branch (where a merged
            # pull request's files land), as the fake always answered before it knew branches.
            on_default, branch = True, None
        if method == "GET" and on_default and (repo, path) in self.contents:
            return None  # the default branch's file: FakeGitHub answers it
        files = self.files(repo, branch)
        if method == "GET":
            if path in files:
                return 200, self._file_json(repo, path, files[path], branch), {}
            listed = sorted(p for p in files if p.startswith(path.rstrip("/") + "/"))
            listed = [p for p in listed if "/" not in p[len(path.rstrip("/")) + 1 :]]
            if listed:
                return 200, [self._file_json(repo, p, files[p], branch) for p in listed], {}
            return 404, {"message": "Not Found"}, {}
        if method != "PUT":
            return 405, {"message": "Method Not Allowed"}, {}
        if not on_default and (repo, branch) not in self._repo_state():
            return 404, {"message": "Branch not found"}, {}
        content = data.get("content")
        if not isinstance(content, str) or not isinstance(data.get("message"), str):
            return 422, {"message": "Validation Failed"}, {}
        existing = files.get(path)
        sha = data.get("sha")
        if existing is not None and sha is None:
            return 422, {"message": '"sha" wasn\'t supplied.'}, {}
        if existing is not None and sha != blob_sha(existing):
            return 409, {"message": f"{path} does not match {sha}"}, {}
        text = base64.b64decode(content).decode()
        if branch is None or branch == self.default_branch(repo):
            self.contents[(repo, path)] = text
        else:
            files[path] = text
        made = self._file_json(repo, path, text, branch)
        commit = {"sha": self._branch_sha(repo, branch), "url": f"{self.url}/commits/x"}
        return (201 if existing is None else 200), {"content": made, "commit": commit}, {}

    def _file_json(self, repo: str, path: str, text: str, branch: str | None) -> dict[str, Any]:
        raw = text.encode()
        ref = branch or self.default_branch(repo)
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(raw),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.b64encode(raw).decode(),
            "sha": blob_sha(text),
            "url": f"{self.url}/repos/{repo}/contents/{path}?ref={ref}",
            "html_url": f"https://github.com/{repo}/blob/{ref}/{path}",
        }

    def _pulls(self, method: str, repo: str, query: dict[str, list[str]], data: Any) -> Reply:
        from connectors.github.fake import FakePull

        owner = repo.split("/")[0]
        if method == "GET":
            state = query.get("state", ["open"])[0]
            head = query.get("head", [None])[0]
            found = [
                self.pull_json(p)
                for p in sorted(self.pulls.values(), key=lambda p: p.number)
                if p.repo == repo
                and (state == "all" or p.state == state)
                and (head is None or head == f"{owner}:{p.head_ref}")
            ]
            return 200, found, {}
        if method != "POST":
            return 405, {"message": "Method Not Allowed"}, {}
        head, base, title = data.get("head"), data.get("base"), data.get("title")
        if not all(isinstance(v, str) and v for v in (head, base, title)):
            return 422, {"message": "Validation Failed"}, {}
        branch = str(head).split(":")[-1]
        if (repo, branch) not in self._repo_state():
            return 422, {"message": "Validation Failed: head invalid"}, {}
        if any(
            p.repo == repo and p.state == "open" and p.head_ref == branch
            for p in self.pulls.values()
        ):
            return 422, {"message": f"A pull request already exists for {owner}:{branch}."}, {}
        number = next(self._numbers)
        pull = FakePull(repo, number, str(title), data.get("body"), self.actor, [])
        pull.base, pull.head_ref = str(base), branch
        self.pulls[(repo, number)] = pull
        self._event(pull, "opened", self.actor)
        return 201, self.pull_json(pull), {}
