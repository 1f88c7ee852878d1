"""JiraTarget against the contract fake with the real `jira` client: requests, writes, races."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.jira import adf
from connectors.jira.engineer import Engineer
from connectors.jira.fake import JiraFake
from connectors.retrying import RetryPolicy
from connectors.target import EmbedEntry
from core.errors import AuthenticationError, PayloadError, TransientError
from core.feedback import ItemMark, ItemObservation
from core.lesson import Mandate
from core.placement import EmbeddingForm
from core.work import System, WorkItem


@pytest.fixture
def fake() -> Iterator[JiraFake]:
    with JiraFake().running() as running:
        yield running


def item(key: str) -> WorkItem:
    return WorkItem(system=System.JIRA, ref=f"jira:{key}", project=key.split("-")[0], type="Story")


def entry(
    pid: str, form: EmbeddingForm = EmbeddingForm.JIRA_CHECKLIST, **extra: object
) -> EmbedEntry:
    values: dict[str, object] = {
        "placement_id": pid,
        "lesson_id": f"lesson-{pid}",
        "lesson_version": 1,
        "title": f"Lesson {pid}",
        "text": f"Do the thing for {pid}.",
        "rule_id": "org/rule",
        "mandate": Mandate.REQUIRED,
        "form": form,
        "lesson_url": "https://cairn.example.com/ui/lessons/x",
        "due_at": datetime(2026, 12, 6, tzinfo=UTC),
    }
    values.update(extra)
    return EmbedEntry(**values)  # type: ignore[arg-type]


def test_checklist_first_embed_is_two_reads_one_write_and_a_repeat_writes_nothing(
    fake: JiraFake,
) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers", "Human text stays.")
    target = fake.target()
    first = target.embed(item(key), [entry("pl_a"), entry("pl_b")])
    assert (first.reads, first.writes) == (2, 1)
    assert fake.writes[key] == 1
    assert first.handles == {"pl_a": adf.local_id("pl_a"), "pl_b": adf.local_id("pl_b")}
    doc = fake.description(key)
    assert adf.plain_text(doc["content"][0]) == "Human text stays."
    assert adf.plain_text(doc["content"][1]) == "Lessons learned"
    assert fake.property(key, "cairn.lessons")["items"]["pl_a"]["localId"] == adf.local_id("pl_a")
    again = target.embed(item(key), [entry("pl_a"), entry("pl_b")])
    assert (again.reads, again.writes) == (1, 0)
    assert fake.writes[key] == 1
    assert fake.count("GET /serverInfo") == 1  # one client per thread, built once


def test_withdrawn_items_are_removed(fake: JiraFake) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers")
    target = fake.target()
    target.embed(item(key), [entry("pl_a"), entry("pl_b")])
    result = target.embed(item(key), [entry("pl_a"), entry("pl_b", withdrawn=True)])
    assert result.writes == 1 and set(result.handles) == {"pl_a"}
    assert set(adf.marks(fake.description(key), ["pl_a", "pl_b"])) == {"pl_a"}
    assert set(fake.property(key, "cairn.lessons")["items"]) == {"pl_a"}


def test_observe_reads_ticks_and_dismissals(fake: JiraFake) -> None:
    engineer = Engineer(fake)
    key, _ = engineer.create_issue("PAY", "Scale workers")
    target = fake.target()
    target.embed(item(key), [entry("pl_a"), entry("pl_b"), entry("pl_c")])
    engineer.tick(key, "pl_a")
    engineer.dismiss(key, "pl_b", "we run PgBouncer")
    before = len(fake.requests)
    observed = target.observe(item(key))
    assert len(fake.requests) - before == 1  # no sub-tasks: one read
    assert set(observed) == {
        ItemObservation(placement_id="pl_a", mark=ItemMark.TICKED),
        ItemObservation(placement_id="pl_b", mark=ItemMark.DISMISSED, reason="we run PgBouncer"),
        ItemObservation(placement_id="pl_c", mark=ItemMark.OPEN),
    }


def test_a_racing_human_edit_is_kept(fake: JiraFake) -> None:
    engineer = Engineer(fake)
    key, _ = engineer.create_issue("PAY", "Scale workers", "Original text.")
    # Right after Cairn's first read, the engineer saves an edit of their own.
    fake.after(f"GET /issue/{key}$", lambda: engineer.add_paragraph(key, "Edited meanwhile."))
    result = fake.target().embed(item(key), [entry("pl_a")])
    texts = [adf.plain_text(n) for n in fake.description(key)["content"]]
    assert texts[:2] == ["Original text.", "Edited meanwhile."]
    assert texts[2] == "Lessons learned"
    assert (result.reads, result.writes) == (4, 1)  # read, check, re-read, check; one write


def test_rate_limits_are_retried_with_retry_after_then_handed_back(fake: JiraFake) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers")
    slept: list[float] = []
    target = fake.target(
        policy=RetryPolicy(attempts=3, base_wait=0.01, max_wait=5, sleep=slept.append)
    )
    fake.fail(429, times=1, retry_after="2", match=f"PUT /issue/{key}$")
    assert target.embed(item(key), [entry("pl_a")]).writes == 1
    assert slept == [2.0] and fake.writes[key] == 1
    fake.fail(429, times=1, retry_after="120", match=f"GET /issue/{key}$")
    with pytest.raises(TransientError) as info:
        target.embed(item(key), [entry("pl_a")])
    assert info.value.retry_after == 120.0
    fake.fail(503, times=5)
    with pytest.raises(TransientError):
        target.observe(item(key))


def test_missing_issues_and_bad_credentials_are_translated(fake: JiraFake) -> None:
    target = fake.target()
    with pytest.raises(PayloadError):
        target.embed(item("PAY-999"), [entry("pl_a")])
    bad = JiraFake(token="wrong")
    bad.url = fake.url
    with pytest.raises(AuthenticationError) as info:
        bad.target().observe(item("PAY-1"))
    assert "wrong" not in str(info.value) and "wrong" not in repr(bad.target())


def test_subtasks_are_created_once_even_when_the_embed_is_retried(fake: JiraFake) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers")
    target = fake.target(policy=RetryPolicy(attempts=1))
    entries = [
        entry("pl_s1", EmbeddingForm.JIRA_SUBTASK),
        entry("pl_s2", EmbeddingForm.JIRA_SUBTASK),
    ]
    # The first create succeeds, the second fails: the embed as a whole fails after one sub-task.
    fake.after("POST /issue$", lambda: fake.fail(503, times=1, match="POST /issue$"))
    with pytest.raises(TransientError):
        target.embed(item(key), entries)
    retried = target.embed(item(key), entries)  # ...the pipeline retries the whole embed
    subtasks = fake.children(key)
    assert sorted(s["properties"]["cairn.lesson"]["placement_id"] for s in subtasks) == [
        "pl_s1",
        "pl_s2",
    ]
    assert all(s["fields"]["labels"] == ["cairn-lesson"] for s in subtasks)
    assert retried.handles == {
        s["properties"]["cairn.lesson"]["placement_id"]: s["key"] for s in subtasks
    }
    again = target.embed(item(key), entries)
    assert again.writes == 0 and len(fake.children(key)) == 2


def test_a_withdrawn_subtask_is_struck_once(fake: JiraFake) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers")
    target = fake.target()
    target.embed(item(key), [entry("pl_s1", EmbeddingForm.JIRA_SUBTASK)])
    withdrawn = [entry("pl_s1", EmbeddingForm.JIRA_SUBTASK, withdrawn=True)]
    result = target.embed(item(key), withdrawn)
    assert result.handles == {} and result.writes == 1
    [subtask] = fake.children(key)
    assert subtask["fields"]["summary"].startswith("[withdrawn] Lesson: Lesson pl_s1")
    assert target.embed(item(key), withdrawn).writes == 0


def test_complete_fills_the_team_from_a_custom_field(fake: JiraFake) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers")
    fake.edit(key, {"customfield_10001": {"id": "1", "value": "payments"}})
    plain = fake.target()
    assert plain.complete(item(key)) == item(key)  # no field configured: no request
    completed = fake.target(team_field="customfield_10001").complete(item(key))
    assert completed.team == "payments"
    labelled = item(key).model_copy(update={"team": "ops"})
    assert fake.target(team_field="customfield_10001").complete(labelled).team == "ops"


def test_a_failed_create_is_not_repeated_blindly(fake: JiraFake) -> None:
    key, _ = Engineer(fake).create_issue("PAY", "Scale workers")
    target = fake.target()  # 3 attempts for reads and PUTs
    fake.fail(502, times=1, match="POST /issue$")
    with pytest.raises(TransientError):
        target.embed(item(key), [entry("pl_s1", EmbeddingForm.JIRA_SUBTASK)])
    assert fake.count("POST /issue") == 1  # the pipeline's retry looks first, then creates
    fake.fail(429, times=1, retry_after="0", match="POST /issue$")
    assert target.embed(item(key), [entry("pl_s1", EmbeddingForm.JIRA_SUBTASK)]).writes == 1
    assert fake.count("POST /issue") == 3  # 502, then 429 repeated at once (Jira did nothing)
    assert len(fake.children(key)) == 1
