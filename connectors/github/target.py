"""GitHubTarget: lessons as a checklist section in pull-request bodies, through PyGithub.

Write economy: `embed` reads the body once and writes it only when the rendered section
differs (one `PATCH`). With App auth it also reads the head commit's `Cairn lessons` check run
and creates or updates it only when its verdict, title or summary differ (`gate` does the same
after a tick): never more than two writes per event, and none for a redelivery or a retry that
finds its markers and its check in place.
`remind` reads the comments (paginated) and posts at most one comment naming the overdue items
whose reminder markers it did not find.
"""

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from github import Auth, Consts, Github
from github.CheckRun import CheckRun
from github.PullRequest import PullRequest

from connectors.github import check, reminder, section, template
from connectors.github.retry import call
from connectors.retrying import RetryPolicy
from connectors.target import EmbedEntry, EmbedResult, GateResult, Reminder, RemindResult
from core.errors import PayloadError
from core.feedback import ItemObservation
from core.work import System, WorkItem

DEFAULT_API_URL = "https://api.github.com"
TEAM_LABEL = "team:"
CHECK_NAME = "Cairn lessons"
MAX_FILES = 3000  # the pull-request files API lists no more than this
_REF = re.compile(r"^github:(?P<repo>[^/#\s]+/[^/#\s]+)#(?P<number>\d+)$")


def _shows(run: CheckRun, conclusion: str, title: str, summary: str) -> bool:
    """Whether a check run already shows this verdict, title and summary."""
    output = run.output
    return (
        run.status == "completed"
        and run.conclusion == conclusion
        and output is not None
        and output.title == title
        and output.summary == summary
    )


def _locate(item: WorkItem | str) -> tuple[str, int]:
    work_ref = item if isinstance(item, str) else item.ref
    match = _REF.match(work_ref)
    if match is None:
        raise PayloadError(f"{work_ref!r} is not a pull request ref (github:owner/repo#N)")
    return match.group("repo"), int(match.group("number"))


CLOSING_WINDOW = timedelta(minutes=10)
"""How far from the close a comment by the person who closed still counts as its reason."""
REASON_LIMIT = 1000


def _reason_text(body: str) -> str | None:
    """A comment as a one-line reason: control characters and runs of space collapsed, cut."""
    text = " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in body).split())
    if len(text) > REASON_LIMIT:
        text = text[: REASON_LIMIT - 1].rstrip() + "…"
    return text or None


class GitHubTarget:
    """The Target for GitHub pull requests (see `connectors.target.Target`).

    The author's team is the value of a `team:<name>` label when there is one, else `teams`
    (author login → team, `CAIRN_GITHUB_TEAMS`). Check Runs need a GitHub App: they are made
    only when `check_runs` is set (the App factory sets it).
    """

    system = System.GITHUB

    def __init__(
        self,
        auth: Auth.Auth,
        *,
        base_url: str = DEFAULT_API_URL,
        own_actor: str | None = None,
        teams: Mapping[str, str] | None = None,
        check_runs: bool = False,
        policy: RetryPolicy | None = None,
        per_page: int = 100,
        timeout: int = 15,
        seconds_between_requests: float | None = Consts.DEFAULT_SECONDS_BETWEEN_REQUESTS,
        seconds_between_writes: float | None = Consts.DEFAULT_SECONDS_BETWEEN_WRITES,
    ) -> None:
        self.own_actor = own_actor
        self.teams = dict(teams or {})
        self.check_runs = check_runs
        self.policy = policy or RetryPolicy()
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._options = {
            "per_page": per_page,
            "timeout": timeout,
            "seconds_between_requests": seconds_between_requests,
            "seconds_between_writes": seconds_between_writes,
        }
        # PyGithub clients hold a connection each; worker threads never share one.
        self._local = threading.local()
        self.templates = template.TemplateWriter(self._client, self.policy)

    @classmethod
    def with_token(cls, token: str, **options: object) -> "GitHubTarget":
        """Authenticate with a personal (or fine-grained) access token."""
        return cls(Auth.Token(token), **options)  # type: ignore[arg-type]

    @classmethod
    def with_app(
        cls, app_id: int | str, private_key: str, installation_id: int, **options: object
    ) -> "GitHubTarget":
        """Authenticate as a GitHub App installation (tokens are fetched and renewed)."""
        auth = Auth.AppAuth(app_id, private_key).get_installation_auth(installation_id)
        options.setdefault("check_runs", True)
        return cls(auth, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        kind = type(self._auth).__name__
        return f"GitHubTarget(base_url={self.base_url!r}, auth={kind}(***))"

    def _client(self) -> Github:
        client: Github | None = getattr(self._local, "client", None)
        if client is None:
            client = Github(
                auth=self._auth,
                base_url=self.base_url,
                retry=None,  # retries live in connectors.github.retry, nowhere else
                lazy=True,  # objects are fetched when read, so a handle costs no request
                **self._options,  # type: ignore[arg-type]
            )
            self._local.client = client
        return client

    def client(self) -> Github:
        """This thread's PyGithub client (shared by other GitHub writers, such as cadence
        issues, so they keep this target's authentication and pacing)."""
        return self._client()

    def _pull(self, item: WorkItem) -> PullRequest:
        repo, number = _locate(item)
        return self._client().get_repo(repo).get_pull(number)

    def _read(self, item: WorkItem) -> tuple[PullRequest, str]:
        def read() -> tuple[PullRequest, str]:
            pr = self._pull(item)
            return pr, pr.body or ""  # reading an attribute fetches the lazy object

        return call(f"read {item.ref}", read, self.policy)

    def complete(self, item: WorkItem) -> WorkItem:
        """Add the changed files (paginated files API) and the author's team; reads only."""

        def files() -> tuple[str, ...]:
            found: dict[str, None] = {}
            for changed in self._pull(item).get_files():
                found[changed.filename] = None
                if changed.previous_filename:
                    found[changed.previous_filename] = None  # a rename touches both paths
                if len(found) >= MAX_FILES:
                    break
            return tuple(found)

        paths = call(f"list files of {item.ref}", files, self.policy)
        return item.model_copy(update={"changed_paths": paths, "team": self._team(item)})

    def _team(self, item: WorkItem) -> str | None:
        for label in item.labels:
            if label.lower().startswith(TEAM_LABEL) and label[len(TEAM_LABEL) :].strip():
                return label[len(TEAM_LABEL) :].strip()
        if item.assignee is not None:
            return self.teams.get(item.assignee, item.team)
        return item.team

    def embed(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> EmbedResult:
        """Make the body's Lessons section show `entries`, and the check its verdict; write
        only what differs. A repository's template (`connectors.github.template`) changes
        through Cairn's template pull request instead."""
        if template.is_template(item.ref):
            return self.templates.embed(item, entries)
        pr, body = self._read(item)
        updated = section.apply(body, entries)
        writes, reads = 0, 1
        if updated != body:
            call(f"edit the body of {item.ref}", lambda: pr.edit(body=updated), self.policy)
            writes += 1
        if self.check_runs:
            checked = self._check_run(item, pr, entries, updated)
            writes, reads = writes + checked.writes, reads + checked.reads
        handles = {e.placement_id: section.handle(e) for e in entries if not e.withdrawn}
        return EmbedResult(handles=handles, writes=writes, reads=reads)

    @property
    def gating(self) -> bool:
        """Whether the `Cairn lessons` check run is posted (GitHub App auth)."""
        return self.check_runs

    def gate(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> GateResult:
        """Re-read the body and make the head commit's check show the verdict for `entries`
        (see `connectors.github.check`): two reads, and one write only when it differs."""
        pr, body = self._read(item)
        checked = self._check_run(item, pr, entries, body)
        return replace(checked, reads=checked.reads + 1)

    def _check_run(
        self, item: WorkItem, pr: PullRequest, entries: Sequence[EmbedEntry], body: str
    ) -> GateResult:
        """Create or update the head commit's check run unless it already shows the verdict."""
        found = check.judge(entries, body)
        title, summary = check.render(found)
        conclusion = found.conclusion.value
        repo = self._client().get_repo(_locate(item)[0])  # lazy: no request
        head = pr.head.sha

        def latest() -> CheckRun | None:
            runs = repo.get_commit(head).get_check_runs(check_name=CHECK_NAME, filter="latest")
            return next(iter(runs), None)  # the first page only

        run = call(f"read the check runs of {item.ref}", latest, self.policy)
        if run is not None and _shows(run, conclusion, title, summary):
            return GateResult(conclusion=conclusion, reads=1)
        output: dict[str, str | list[dict[str, str | int]]] = {"title": title, "summary": summary}
        if run is not None:
            current = run
            call(
                f"update the check run on {item.ref}",
                lambda: current.edit(status="completed", conclusion=conclusion, output=output),
                self.policy,
            )
        else:
            # A create is not idempotent: it is not retried here; the pipeline's retry reads
            # the check runs again before creating one.
            once = replace(self.policy, attempts=1)
            call(
                f"create a check run on {item.ref}",
                lambda: repo.create_check_run(
                    name=CHECK_NAME,
                    head_sha=head,
                    status="completed",
                    conclusion=conclusion,
                    output=output,
                ),
                once,
            )
        return GateResult(conclusion=conclusion, written=True, writes=1, reads=1)

    def observe(self, item: WorkItem) -> tuple[ItemObservation, ...]:
        """Re-read the body and report the mark on every item of the section (a grouped item's
        once per lesson it stands for). A template's items are read from its pull request's
        webhooks, not re-read."""
        if template.is_template(item.ref):
            return ()
        _pr, body = self._read(item)
        return section.observe(body)

    def closing_reason(self, via: str, closer: str | None, closed_at: datetime) -> str | None:
        """The comment the person who closed `via` wrote within `CLOSING_WINDOW` of the close,
        before or after it (the last one there when Cairn reads), as one line; None when they
        wrote none. One read: only the window's comments are listed."""
        if closer is None:
            return None
        repo, number = _locate(via)
        issue = self._client().get_repo(repo).get_issue(number)  # lazy: no request

        def read() -> list[tuple[str | None, datetime | None, str]]:
            # Only the window's comments: one page, however long the conversation was.
            since = closed_at - CLOSING_WINDOW
            return [
                (None if c.user is None else c.user.login, c.created_at, c.body or "")
                for c in issue.get_comments(since=since)
            ]

        comments = call(f"read the comments of {via}", read, self.policy)
        said = [
            body
            for login, created, body in comments
            if login == closer
            and created is not None
            and abs(created - closed_at) <= CLOSING_WINDOW
        ]
        return _reason_text(said[-1]) if said else None

    def remind(self, item: WorkItem, reminders: Sequence[Reminder]) -> RemindResult:
        """Comment on the pull request naming the overdue items not reminded yet (their markers
        are read from the comments first); nothing when every one is there already."""
        repo, number = _locate(item)
        issue = self._client().get_repo(repo).get_issue(number)  # lazy: no request

        def read() -> tuple[set[str], int]:
            bodies = [comment.body for comment in issue.get_comments()]  # every page
            return reminder.keys(bodies), max(1, -(-len(bodies) // self._page_size))

        found, reads = call(f"read the comments of {item.ref}", read, self.policy)
        wanted = {r.key for r in reminders}
        missing = [r for r in reminders if r.key not in found]
        if not missing:
            return RemindResult(reminded=frozenset(wanted & found), reads=reads)
        body = reminder.render(missing)
        # A create is not idempotent: a lost answer may hide a comment that was made. It is not
        # retried here; the pipeline's retry reads the comments again before posting.
        once = replace(self.policy, attempts=1)
        posted = call(f"comment on {item.ref}", lambda: issue.create_comment(body), once)
        return RemindResult(
            reminded=frozenset(wanted), comment=str(posted.id), writes=1, reads=reads
        )

    @property
    def _page_size(self) -> int:
        return int(self._options["per_page"] or 30)
