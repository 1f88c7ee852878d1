"""`remind` on the GitHub and Jira targets against their contract fakes, with the real clients:
one comment naming the overdue items, read back before writing, never posted twice."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.github import reminder as github_reminder
from connectors.github import webhook
from connectors.github.fake import FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.jira import adf
from connectors.jira import reminder as jira_reminder
from connectors.jira.engineer import Engineer
from connectors.jira.fake import JiraFake
from connectors.retrying import RetryPolicy
from connectors.target import Reminder, Reminding
from core.errors import PayloadError, TransientError
from core.lesson import Mandate
from core.work import System, WorkItem

REPO = "acme/payments-api"
KEY = (REPO, 1)
DUE = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def reminder(pid: str, number: int = 1, title: str | None = None) -> Reminder:
    return Reminder(
        placement_id=pid,
        key=f"{pid}:{number}",
        title=title or f"Lesson {pid}",
        mandate=Mandate.REQUIRED,
        due_at=DUE,
        lesson_url=f"https://cairn.example.com/api/v1/lessons/{pid}",
    )


# --- GitHub -------------------------------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub().running() as server:
        yield server


@pytest.fixture
def pull(github: FakeGitHub) -> WorkItem:
    opened = github.open_pull(REPO, title="Raise workers", body="Text.", files=["a.py"])
    (event,) = webhook.parse({"X-GitHub-Event": "pull_request"}, opened.body)
    return event.work_item  # type: ignore[union-attr]


def github_target(fake: FakeGitHub, **options: object) -> GitHubTarget:
    return GitHubTarget.with_token(
        "ghp_fake",
        base_url=fake.url,
        policy=RetryPolicy(attempts=3, base_wait=0.01, max_wait=2),
        seconds_between_requests=0,
        seconds_between_writes=0,
        **options,
    )


def test_github_posts_one_comment_and_a_repeat_posts_nothing(
    github: FakeGitHub, pull: WorkItem
) -> None:
    target = github_target(github)
    assert isinstance(target, Reminding)
    first = target.remind(pull, [reminder("pl_a"), reminder("pl_b")])
    assert first.reminded == {"pl_a:1", "pl_b:1"} and first.comment == "1001"
    assert (first.reads, first.writes) == (1, 1)
    [comment] = github.comments[KEY]
    assert comment["user"]["login"] == "cairn-bot"
    assert comment["body"].splitlines()[:3] == [
        "<!-- cairn:reminder:pl_a:1 -->",
        "<!-- cairn:reminder:pl_b:1 -->",
        "**Overdue lessons:** these mandated items are past their due date and still open on "
        "this pull request.",
    ]
    assert (
        "- **Lesson pl\\_a** — required — due 2026-12-01 · [Lesson](https://cairn.example.com/api/v1/lessons/pl_a)"
        in comment["body"]
    )
    assert github.deliveries[-1].event == "issue_comment"  # Cairn's own comment comes back

    again = target.remind(pull, [reminder("pl_a"), reminder("pl_b")])
    assert again.reminded == {"pl_a:1", "pl_b:1"} and again.comment is None
    assert (again.reads, again.writes) == (1, 0)
    # One already there, one new: only the new one is posted.
    mixed = target.remind(pull, [reminder("pl_a"), reminder("pl_b", 2)])
    assert mixed.writes == 1
    assert github_reminder.keys([github.comments[KEY][-1]["body"]]) == {"pl_b:2"}
    assert github.writes[KEY] == 2


def test_github_reads_every_page_of_comments(github: FakeGitHub, pull: WorkItem) -> None:
    target = github_target(github, per_page=10)
    target.remind(pull, [reminder("pl_a")])
    for n in range(25):  # the conversation goes on under Cairn's comment
        github.comment(github.pulls[KEY], f"comment {n}", "octocat")
    again = target.remind(pull, [reminder("pl_a")])
    assert (again.reads, again.writes) == (3, 0)
    assert github.requests.count(f"GET /repos/{REPO}/issues/1/comments") == 4


def test_github_title_is_inert_markdown(github: FakeGitHub, pull: WorkItem) -> None:
    hostile = "Fixes #1 @here <img src=x> **bold** -->"
    github_target(github).remind(pull, [reminder("pl_a", title=hostile)])
    body = github.comments[KEY][0]["body"]
    assert "<img" not in body and "@here" not in body and "#1" not in body
    assert github_reminder.keys([body]) == {"pl_a:1"}


def test_github_a_failed_post_is_not_repeated_in_the_call(
    github: FakeGitHub, pull: WorkItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = github.dispatch
    posts: list[str] = []

    def lost_answer(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        reply = real(method, target, headers, body)
        if method == "POST":
            posts.append(target)
            return 502, {"message": "Bad Gateway"}, {}  # made, but the answer was lost
        return reply

    monkeypatch.setattr(github, "dispatch", lost_answer)
    target = github_target(github)
    with pytest.raises(TransientError):
        target.remind(pull, [reminder("pl_a")])
    assert len(posts) == 1  # a create is never repeated blindly
    monkeypatch.setattr(github, "dispatch", real)
    retried = target.remind(pull, [reminder("pl_a")])  # the pipeline's retry reads first
    assert (retried.writes, retried.reminded) == (0, {"pl_a:1"})
    assert len(github.comments[KEY]) == 1


def test_github_missing_pull_request_is_a_payload_error(github: FakeGitHub) -> None:
    gone = WorkItem(
        system=System.GITHUB, ref=f"github:{REPO}#99", project=REPO, type="pull_request"
    )
    with pytest.raises(PayloadError):
        github_target(github).remind(gone, [reminder("pl_a")])


# --- Jira ---------------------------------------------------------------------------------------


@pytest.fixture
def jira() -> Iterator[JiraFake]:
    with JiraFake().running() as running:
        yield running


def issue(key: str) -> WorkItem:
    return WorkItem(system=System.JIRA, ref=f"jira:{key}", project=key.split("-")[0], type="Story")


def test_jira_posts_one_adf_comment_with_its_keys_and_a_repeat_posts_nothing(
    jira: JiraFake,
) -> None:
    key, _ = Engineer(jira).create_issue("PAY", "Scale workers")
    target = jira.target()
    assert isinstance(target, Reminding)
    first = target.remind(issue(key), [reminder("pl_a"), reminder("pl_b")])
    assert first.reminded == {"pl_a:1", "pl_b:1"}
    assert (first.reads, first.writes) == (1, 1)
    [comment] = jira.comments(key)
    assert first.comment == comment["id"]
    assert comment["properties"] == {jira_reminder.PROPERTY: {"keys": ["pl_a:1", "pl_b:1"]}}
    text = adf.plain_text(comment["body"])
    assert text.startswith("Overdue lessons: these mandated items are past their due date")
    assert "Lesson pl_a — required — due 2026-12-01 — lesson" in text
    links = [
        mark["attrs"]["href"]
        for bullet in comment["body"]["content"][1]["content"]
        for node in bullet["content"][0]["content"]
        for mark in node.get("marks", [])
        if mark["type"] == "link"
    ]
    assert links == [
        "https://cairn.example.com/api/v1/lessons/pl_a",
        "https://cairn.example.com/api/v1/lessons/pl_b",
    ]
    again = target.remind(issue(key), [reminder("pl_a"), reminder("pl_b")])
    assert (again.reads, again.writes, again.comment) == (1, 0, None)
    assert jira.writes[key] == 1


def test_jira_reads_every_page_of_comments(jira: JiraFake) -> None:
    key, _ = Engineer(jira).create_issue("PAY", "Scale workers")
    target = jira.target()
    stored = jira.issues[key].setdefault("comments", [])
    for n in range(150):  # a long discussion before the reminder
        stored.append({"id": str(n), "body": adf.empty_doc(), "properties": {}})
    target.remind(issue(key), [reminder("pl_a")])
    again = target.remind(issue(key), [reminder("pl_a")])
    assert (again.reads, again.writes) == (2, 0)


def test_jira_a_lost_answer_to_the_post_is_left_to_the_pipeline(jira: JiraFake) -> None:
    key, _ = Engineer(jira).create_issue("PAY", "Scale workers")
    target = jira.target()
    jira.fail(502, times=1, match=r"POST /issue/[^/]+/comment")
    with pytest.raises(TransientError):
        target.remind(issue(key), [reminder("pl_a")])
    assert jira.count("POST /issue/") == 1  # not repeated within the call
    jira.fail(429, times=1, retry_after="0", match=r"POST /issue/[^/]+/comment")
    done = target.remind(issue(key), [reminder("pl_a")])  # a refused create is safe to repeat
    assert done.writes == 1 and len(jira.comments(key)) == 1


def test_jira_a_deleted_issue_is_a_payload_error(jira: JiraFake) -> None:
    with pytest.raises(PayloadError):
        jira.target().remind(issue("PAY-404"), [reminder("pl_a")])
