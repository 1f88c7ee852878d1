"""Review-cadence issues in a GitHub repository: one per owner team, found again by a marker.

The body starts with a hidden `<!-- cairn:cadence:<team> digest=<digest> -->` marker and the
issue carries the `cairn-cadence` label, so a later run finds the team's open issue by listing
the label (one page is enough: each team has one open issue) and knows what it lists without
parsing the text. A create is never retried blindly: the caller looks first (`find`).
"""

import re
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import quote

from github import Github
from github.GithubException import UnknownObjectException
from github.Issue import Issue as GitHubIssue

from connectors.github import section
from connectors.github.retry import call
from connectors.retrying import RetryPolicy
from core.cadence import EMPTY, INTRO, LABEL, MARKER_PREFIX, Issue, Report, line
from core.errors import PayloadError

_REF = re.compile(r"^(?P<repo>[^/#\s]+/[^/#\s]+)#(?P<number>\d+)$")
_MARKER = re.compile(
    r"<!-- " + re.escape(MARKER_PREFIX) + r"(?P<team>\S+) digest=(?P<digest>\w+) -->"
)


def marker(report: Report) -> str:
    """The hidden first line naming the team and the digest of what the body lists."""
    return f"<!-- {MARKER_PREFIX}{quote(report.team, safe='')} digest={report.digest} -->"


def body(report: Report) -> str:
    """The issue body (Markdown): marker, intro, one bullet per item linking to its page."""
    lines = [marker(report), INTRO, ""]
    for item in report.items:
        title = section.escape(item.title) or section.escape(item.subject)
        link = quote(item.link, safe=":/?&=#%+@,;~")
        lines.append(f"- [{title}]({link}) — {section.escape(line(item))}")
    if not report.items:
        lines.append(EMPTY)
    return "\n".join(lines)


def _locate(ref: str) -> tuple[str, int]:
    match = _REF.match(ref)
    if match is None:
        raise PayloadError(f"{ref!r} is not an issue ref (owner/repo#N)")
    return match.group("repo"), int(match.group("number"))


def _issue(repo: str, found: GitHubIssue, team: str | None = None) -> Issue | None:
    """The issue as a cadence issue (None when `team` is given and the marker names another)."""
    match = _MARKER.search(found.body or "")
    if team is not None and (match is None or match.group("team") != quote(team, safe="")):
        return None
    digest = None if match is None else match.group("digest")
    return Issue(f"{repo}#{found.number}", found.html_url, found.state == "open", digest)


class GitHubIssues:
    """Cadence issues in GitHub repositories, through PyGithub (`client` gives this thread's
    client: the GitHub target's, so both share authentication and pacing)."""

    def __init__(self, client: Callable[[], Github], policy: RetryPolicy | None = None) -> None:
        self._client = client
        self.policy = policy or RetryPolicy()

    def __repr__(self) -> str:
        return "GitHubIssues()"

    def find(self, where: str, report: Report) -> Issue | None:
        """The team's open cadence issue in repository `where`, or None."""

        def listed() -> Issue | None:
            issues = self._client().get_repo(where).get_issues(state="open", labels=[LABEL])
            for found in issues.get_page(0):  # one page: a team has one open issue
                if found.pull_request is None:
                    issue = _issue(where, found, report.team)
                    if issue is not None:
                        return issue
            return None

        return call(f"list the cadence issues of {where}", listed, self.policy)

    def read(self, ref: str) -> Issue | None:
        """The issue now, or None when it no longer exists."""
        repo, number = _locate(ref)

        def read() -> Issue | None:
            try:
                found = self._client().get_repo(repo).get_issue(number)
                found.state  # noqa: B018 (reading an attribute fetches the lazy object)
            except UnknownObjectException:
                return None
            return _issue(repo, found)

        return call(f"read {ref}", read, self.policy)

    def create(self, where: str, report: Report) -> Issue:
        """Open the team's issue in repository `where`, labelled `cairn-cadence`."""
        once = replace(self.policy, attempts=1)  # a create is not idempotent
        made = call(
            f"open the cadence issue of {report.team} in {where}",
            lambda: (
                self._client()
                .get_repo(where)
                .create_issue(title=report.title, body=body(report), labels=[LABEL])
            ),
            once,
        )
        return Issue(f"{where}#{made.number}", made.html_url, True, report.digest)

    def update(self, ref: str, report: Report) -> Issue:
        """Make the issue list the report (title and body in one `PATCH`)."""
        repo, number = _locate(ref)

        def edit() -> Issue:
            found = self._client().get_repo(repo).get_issue(number)
            found.edit(title=report.title, body=body(report))
            return Issue(ref, found.html_url, found.state == "open", report.digest)

        return call(f"update {ref}", edit, self.policy)
