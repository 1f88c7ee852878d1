"""GitHub webhooks: signatures, delivery keys, and one test per published example payload."""

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.github.webhook import EVENTS, GitHubVerifier, Reaction, parse, sign, signature
from core.errors import AuthenticationError, ConfigurationError, PayloadError
from core.events import FeedbackEvent, WorkItemEvent
from core.feedback import Closure, ItemMark

FIXTURES = Path(__file__).parents[3] / "connectors" / "github" / "fixtures"
SECRET = "a webhook secret"


def _headers(event: str, delivery: str = "72d3162e", hook: str = "109948940") -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-GitHub-Hook-ID": hook}


def _parse(name: str, event: str = "pull_request") -> list[Any]:
    return parse(_headers(event), (FIXTURES / f"{name}.json").read_bytes())


# --- signatures ---------------------------------------------------------------------------------


def test_githubs_documented_test_vector() -> None:
    # docs.github.com "Validating webhook deliveries": secret, payload and expected signature.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature("It's a Secret to Everybody", b"Hello, World!") == expected
    verifier = GitHubVerifier("It's a Secret to Everybody")
    headers = {**_headers("ping"), "X-Hub-Signature-256": expected}
    assert verifier.verify(headers, b"Hello, World!").delivery_key == "109948940:72d3162e"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "sha1=0123",
        "sha256=" + "0" * 64,
        "SHA256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n",
        "sha256=\udcff",
    ],
)
def test_bad_or_missing_signatures_are_refused(value: str | None) -> None:
    headers = _headers("ping")
    if value is not None:
        headers["X-Hub-Signature-256"] = value
    with pytest.raises(AuthenticationError):
        GitHubVerifier("It's a Secret to Everybody").verify(headers, b"Hello, World!")


def test_a_tampered_body_is_refused() -> None:
    headers = sign(SECRET, b"{}", event="ping", delivery="d")
    with pytest.raises(AuthenticationError):
        GitHubVerifier(SECRET).verify(headers, b'{"x": 1}')


def test_delivery_key_tells_hooks_apart_and_keeps_redeliveries_together() -> None:
    body = b"{}"
    verifier = GitHubVerifier(SECRET)
    first = verifier.verify(sign(SECRET, body, event="ping", delivery="d1", hook_id="1"), body)
    again = verifier.verify(sign(SECRET, body, event="ping", delivery="d1", hook_id="1"), body)
    other_hook = verifier.verify(sign(SECRET, body, event="ping", delivery="d1", hook_id="2"), body)
    assert first == again
    assert first != other_hook


def test_lower_case_header_names_verify_too() -> None:
    headers = {k.lower(): v for k, v in sign(SECRET, b"{}", event="ping", delivery="d").items()}
    assert GitHubVerifier(SECRET).verify(headers, b"{}").delivery_key == "1:d"


def test_missing_delivery_id_is_refused() -> None:
    headers = sign(SECRET, b"{}", event="ping", delivery="d")
    del headers["X-GitHub-Delivery"]
    with pytest.raises(AuthenticationError):
        GitHubVerifier(SECRET).verify(headers, b"{}")


def test_the_secret_never_shows() -> None:
    verifier = GitHubVerifier("s3cr3t-value")
    assert "s3cr3t" not in repr(verifier) and "s3cr3t" not in str(verifier)
    with pytest.raises(ConfigurationError):
        GitHubVerifier("")


# --- the event table ----------------------------------------------------------------------------


def test_the_table_declares_every_supported_pair() -> None:
    assert set(EVENTS) == {
        ("pull_request", a)
        for a in ("opened", "reopened", "ready_for_review", "synchronize", "edited", "closed")
    }


def test_fixture_ping() -> None:
    assert _parse("ping", event="ping") == []


@pytest.mark.parametrize("name", ["opened", "reopened", "ready_for_review", "synchronize"])
def test_fixture_routes_the_pull_request(name: str) -> None:
    (event,) = _parse(f"pull_request__{name}")
    assert isinstance(event, WorkItemEvent) and event.complete
    item = event.work_item
    assert item.ref == "github:Codertocat/Hello-World#2"
    assert str(item.url) == "https://github.com/Codertocat/Hello-World/pull/2"
    assert (item.project, item.type) == ("Codertocat/Hello-World", "pull_request")
    assert item.title == "Update the README with new information."
    assert (item.labels, item.base_branch, item.assignee) == (("bug",), "master", "Codertocat")
    assert item.changed_paths == () and item.team is None  # read from the API afterwards
    assert EVENTS[("pull_request", name)] == Reaction.WORK_ITEM


def test_fixture_opened_null_body() -> None:
    (event,) = _parse("pull_request__opened_null_body")
    assert isinstance(event, WorkItemEvent)


def test_fixture_edited() -> None:
    (event,) = _parse("pull_request__edited")
    assert isinstance(event, FeedbackEvent)
    observation = event.observation
    assert observation.work_item_ref == "github:Codertocat/Hello-World#2"
    assert observation.actor == "Codertocat"
    assert observation.delivery_id == "109948940:72d3162e"
    assert observation.closure is None and observation.body_changed
    marks = {i.placement_id: (i.mark, i.reason) for i in observation.items or ()}
    assert marks == {
        "pl_example_pool": (ItemMark.TICKED, None),
        "pl_example_assets": (ItemMark.DISMISSED, "this service serves no static assets"),
    }


def test_fixture_closed() -> None:
    (event,) = _parse("pull_request__closed")
    assert isinstance(event, FeedbackEvent)
    assert event.observation.closure == Closure.CLOSED
    assert event.observation.items == ()  # the example body has no Cairn section


def test_fixture_closed_merged() -> None:
    (event,) = _parse("pull_request__closed_merged")
    assert isinstance(event, FeedbackEvent)
    assert event.observation.closure == Closure.MERGED
    assert {i.mark for i in event.observation.items or ()} == {ItemMark.OPEN}


@pytest.mark.parametrize("name", ["labeled", "converted_to_draft"])
def test_fixture_of_an_ignored_action(name: str) -> None:
    assert _parse(f"pull_request__{name}") == []


def test_unknown_events_are_ignored_without_reading_them() -> None:
    assert parse(_headers("issues"), b'{"action": "opened"}') == []
    assert parse(_headers("push"), b"{}") == []


def _edited(before: str | None, after: str, with_body_change: bool = True) -> bytes:
    raw = json.loads((FIXTURES / "pull_request__edited.json").read_bytes())
    raw["pull_request"]["body"] = after
    raw["changes"] = {"body": {"from": before}} if with_body_change else {"title": {"from": "x"}}
    return json.dumps(raw).encode()


def test_edits_that_leave_the_section_alone_are_skipped() -> None:
    raw = json.loads((FIXTURES / "pull_request__edited.json").read_bytes())
    current = raw["pull_request"]["body"]
    assert parse(_headers("pull_request"), _edited("Old intro\n\n" + current, current)) == []
    assert parse(_headers("pull_request"), _edited(None, current, with_body_change=False)) == []


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b'{"action": "opened"}', b'{"action": "opened", "pull_request": {}}'],
)
def test_malformed_supported_payloads_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse(_headers("pull_request"), body)
