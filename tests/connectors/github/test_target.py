"""GitHubTarget against the contract fake, through the real PyGithub client."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.github import webhook
from connectors.github.fake import FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.retrying import RetryPolicy
from connectors.target import EmbedEntry
from core.errors import AuthenticationError, PayloadError, TransientError
from core.feedback import ItemMark
from core.lesson import Mandate
from core.placement import EmbeddingForm
from core.work import WorkItem

REPO = "acme/payments-api"
KEY = (REPO, 1)
FAST = {"seconds_between_requests": 0, "seconds_between_writes": 0}


def entry(pid: str, mandate: Mandate = Mandate.REQUIRED, withdrawn: bool = False) -> EmbedEntry:
    return EmbedEntry(
        placement_id=pid,
        lesson_id=f"lesson-{pid}",
        lesson_version=1,
        title=f"Lesson {pid}",
        text="Do the careful thing.",
        rule_id="rule",
        mandate=mandate,
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        due_at=datetime(2026, 12, 1, tzinfo=UTC),
        withdrawn=withdrawn,
    )


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub().running() as server:
        yield server


@pytest.fixture
def item(fake: FakeGitHub) -> WorkItem:
    opened = fake.open_pull(
        REPO,
        title="Raise workers",
        body="Author's text.",
        files=[f"src/db/f{i}.py" for i in range(5)],
        labels=["team:payments"],
    )
    (event,) = webhook.parse({"X-GitHub-Event": "pull_request"}, opened.body)
    return event.work_item  # type: ignore[union-attr]


def target(fake: FakeGitHub, **options: object) -> GitHubTarget:
    policy = RetryPolicy(attempts=3, base_wait=0.01, max_wait=2)
    return GitHubTarget.with_token(
        "ghp_fake", base_url=fake.url, own_actor="cairn-bot", policy=policy, **FAST, **options
    )


def test_complete_reads_every_page_of_files_and_the_team_label(
    fake: FakeGitHub, item: WorkItem
) -> None:
    completed = target(fake, per_page=2).complete(item)
    assert completed.changed_paths == tuple(f"src/db/f{i}.py" for i in range(5))
    assert completed.team == "payments"
    assert fake.writes[KEY] == 0
    assert fake.requests.count(f"GET /repos/{REPO}/pulls/1/files") == 3  # three pages


def test_team_from_the_login_map_when_there_is_no_label(fake: FakeGitHub, item: WorkItem) -> None:
    plain = item.model_copy(update={"labels": ()})
    assert target(fake, teams={"octocat": "ledger"}).complete(plain).team == "ledger"


def test_embed_writes_once_then_never_again_for_the_same_entries(
    fake: FakeGitHub, item: WorkItem
) -> None:
    github = target(fake)
    entries = [entry(f"pl_{i}") for i in range(12)]  # many lessons, still one write
    first = github.embed(item, entries)
    assert (first.writes, first.reads) == (1, 1)
    assert first.handles == {f"pl_{i}": f"cairn:item:pl_{i}" for i in range(12)}
    again = github.embed(item, entries)  # a retried or redelivered embed finds its markers
    assert (again.writes, again.handles) == (0, first.handles)
    assert fake.writes[KEY] == 1
    assert (fake.pulls[KEY].body or "").startswith("Author's text.\n\n<!-- cairn:lessons:start -->")


def test_ticks_survive_a_new_lesson_and_withdrawn_items_go(
    fake: FakeGitHub, item: WorkItem
) -> None:
    github = target(fake)
    github.embed(item, [entry("a"), entry("b")])
    fake.tick(KEY, "a")
    fake.dismiss(KEY, "b", "not relevant")
    result = github.embed(item, [entry("a"), entry("b", withdrawn=True), entry("c")])
    assert result.writes == 1 and set(result.handles) == {"a", "c"}
    marks = {o.placement_id: o.mark for o in github.observe(item)}
    assert marks == {"a": ItemMark.TICKED, "c": ItemMark.OPEN}
    assert fake.writes[KEY] == 2


def test_observe_reads_the_marks(fake: FakeGitHub, item: WorkItem) -> None:
    github = target(fake)
    github.embed(item, [entry("a"), entry("b")])
    fake.dismiss(KEY, "b", "we use PgBouncer")
    observed = {(o.placement_id, o.mark, o.reason) for o in github.observe(item)}
    assert observed == {("a", ItemMark.OPEN, None), ("b", ItemMark.DISMISSED, "we use PgBouncer")}


def test_429_with_retry_after_is_waited_out(fake: FakeGitHub, item: WorkItem) -> None:
    fake.fail(429, times=1, retry_after="1")
    started = time.monotonic()
    result = target(fake).embed(item, [entry("a")])
    assert result.writes == 1 and time.monotonic() - started >= 1
    assert fake.writes[KEY] == 1


def test_secondary_rate_limit_403_is_retried(fake: FakeGitHub, item: WorkItem) -> None:
    fake.fail(403, times=1, message="You have exceeded a secondary rate limit.")
    assert target(fake).embed(item, [entry("a")]).writes == 1


def test_a_long_wait_is_handed_back_to_the_pipeline(fake: FakeGitHub, item: WorkItem) -> None:
    fake.fail(429, times=1, retry_after="120")
    with pytest.raises(TransientError) as info:
        target(fake).embed(item, [entry("a")])
    assert info.value.retry_after == 120
    assert fake.writes[KEY] == 0


def test_a_persistent_outage_becomes_a_transient_error(fake: FakeGitHub, item: WorkItem) -> None:
    fake.fail(502, times=10)
    with pytest.raises(TransientError):
        target(fake).observe(item)


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, PayloadError), (410, PayloadError), (422, PayloadError), (401, AuthenticationError)],
)
def test_errors_that_retrying_cannot_fix(
    fake: FakeGitHub, item: WorkItem, status: int, error: type[Exception]
) -> None:
    fake.fail(status, times=1)
    with pytest.raises(error):
        target(fake).embed(item, [entry("a")])
    assert fake.writes[KEY] == 0


def test_a_missing_pull_request_is_a_payload_error(fake: FakeGitHub, item: WorkItem) -> None:
    gone = item.model_copy(update={"ref": f"github:{REPO}#99"})
    with pytest.raises(PayloadError):
        target(fake).observe(gone)


def test_no_token_in_repr(fake: FakeGitHub) -> None:
    assert "ghp_fake" not in repr(target(fake))


def test_app_auth_fetches_an_installation_token_and_adds_one_check_run(item: WorkItem) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with FakeGitHub(app_id="4242", app_public_key=public).running() as fake:
        fake.open_pull(REPO, title="t", body=None, files=["a.py"])
        github = GitHubTarget.with_app(
            "4242", pem, 7, base_url=fake.url, own_actor="cairn[bot]", **FAST
        )
        result = github.embed(item, [entry("a"), entry("b", Mandate.INVITED)])
        assert result.writes == 2 and fake.writes[KEY] == 2
        assert "POST /app/installations/7/access_tokens" in fake.requests
        (run,) = fake.check_runs
        assert run["name"] == "Cairn lessons" and run["conclusion"] == "neutral"
        assert "Lesson a" in run["output"]["summary"]
        assert "Lesson b" not in run["output"]["summary"]  # invited: not outstanding
        assert github.embed(item, [entry("a"), entry("b", Mandate.INVITED)]).writes == 0
        assert fake.writes[KEY] == 2
        assert pem not in repr(github)
