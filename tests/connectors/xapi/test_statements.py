"""What Cairn reads from an xAPI statement: the outcome of each verb, the learner by mbox or by
account, odd statements skipped with a reason (never an exception), and pushed statements
accepted only with the right credentials."""

import base64
import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.base import load_json
from connectors.lms import Completion
from connectors.xapi.client import Cursor
from connectors.xapi.statements import (
    COMPLETED,
    FAILED,
    PASSED,
    SATISFIED,
    VOIDED,
    BasicCredentials,
    BearerSecret,
    Statement,
    outcome,
    parse_statement,
    parse_statements,
    verify_push,
)
from core.errors import AuthenticationError, ConfigurationError, PayloadError

ACTIVITY = "https://lms.example.com/xapi/activities/connection-pools"


def raw(verb: str = COMPLETED, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "6f1d3c1e-5a43-4c4e-9f55-2d5b3b8b9a01",
        "actor": {"objectType": "Agent", "mbox": "mailto:Dana.Ops@Example.com"},
        "verb": {"id": verb, "display": {"en-US": "did"}},
        "object": {"objectType": "Activity", "id": ACTIVITY},
        "timestamp": "2026-12-01T09:00:00.120Z",
        "stored": "2026-12-01T09:00:01.5+01:00",
        "context": {"registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7"},
        "authority": {"mbox": "mailto:lrs@example.com"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def read(body: dict[str, Any]) -> Statement:
    statement = parse_statement(body)
    assert statement is not None
    return statement


# --- outcome ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "result", "expected"),
    [
        (COMPLETED, None, Completion.COMPLETED),
        (COMPLETED, {"completion": True}, Completion.COMPLETED),
        (PASSED, None, Completion.PASSED),
        (PASSED, {"success": True, "score": {"scaled": 0.9}}, Completion.PASSED),
        (FAILED, None, Completion.FAILED),
        (FAILED, {"success": False}, Completion.FAILED),
        (SATISFIED, None, Completion.COMPLETED),
        ("http://adlnet.gov/expapi/verbs/experienced", None, None),
        ("http://adlnet.gov/expapi/verbs/attempted", {"completion": True}, None),
        ("https://w3id.org/xapi/adl/verbs/waived", None, None),
        (VOIDED, None, None),
    ],
)
def test_outcome_of_each_verb(
    verb: str, result: dict[str, Any] | None, expected: Completion | None
) -> None:
    assert outcome(read(raw(verb, result=result))) == expected


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"result": {"success": False}, "verb": {"id": PASSED}}, "result.success false"),
        ({"result": {"success": True}, "verb": {"id": FAILED}}, "result.success true"),
        ({"result": {"completion": False}}, "result.completion false"),
        ({"actor": None}, "actor"),
        ({"actor": {"objectType": "Group", "mbox": "mailto:team@example.com"}}, "actor"),
        ({"actor": {"mbox_sha1sum": "ab" * 20}}, "actor"),
        ({"actor": {"mbox": "dana@example.com"}}, "actor"),  # no mailto:
        ({"object": {"objectType": "StatementRef", "id": "6f1d3c1e"}}, "activity"),
        ({"object": {"objectType": "Activity"}}, "activity"),
        ({"object": None}, "activity"),
    ],
)
def test_odd_statements_have_no_outcome_and_say_why(
    changes: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = raw() | changes
    statement = read({k: v for k, v in body.items() if v is not None})
    with caplog.at_level(logging.WARNING, logger="connectors.xapi.statements"):
        assert outcome(statement) is None
    assert reason in caplog.text
    assert statement.id in caplog.text
    assert "dana" not in caplog.text.lower()  # the reason names the statement, not the learner


def test_a_statement_without_a_verb_has_no_outcome() -> None:
    assert outcome(read({k: v for k, v in raw().items() if k != "verb"})) is None


# --- learners, activities, times -------------------------------------------------------------


def test_learner_by_mbox_is_the_lower_cased_address() -> None:
    statement = read(raw())
    assert statement.actor is not None and statement.actor.email == "dana.ops@example.com"
    assert statement.learner == "mailto:dana.ops@example.com"
    assert statement.activity == ACTIVITY
    assert statement.verb_id == COMPLETED


def test_learner_by_account() -> None:
    actor = {"account": {"homePage": "https://lms.example.com", "name": "lee-42"}, "name": "Lee"}
    statement = read(raw(actor=actor))
    assert statement.learner == "account:https://lms.example.com|lee-42"
    assert statement.actor is not None and statement.actor.email is None
    assert outcome(statement) == Completion.COMPLETED


def test_times_are_aware_and_stored_orders_the_statement() -> None:
    statement = read(raw(timestamp="2026-12-01T09:00:00", stored=None))
    assert statement.timestamp == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # naive read as UTC
    assert statement.position == statement.timestamp
    stored = read(raw())
    assert stored.position == datetime(2026, 12, 1, 8, 0, 1, 500000, tzinfo=UTC)


# --- unreadable input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        7,
        "statement",
        None,
        [],
        {},
        {"id": 5},
        {"id": ""},
        {"id": "x" * 500},
        raw(actor={"mbox": 42}),
        raw(actor={"account": {"homePage": "https://x.example"}}),
        raw(result={"success": "yes"}),
        raw(result={"completion": 1}),
        raw(stored="yesterday"),
        raw(timestamp={"at": "noon"}),
        raw(verb={"id": ""}),
        raw() | {"verb": "completed"},
        raw(object={"id": "x" * 5000}),
    ],
)
def test_unreadable_statements_are_skipped_with_a_reason(
    body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="connectors.xapi.statements"):
        assert parse_statement(body) is None
    assert "skipped" in caplog.text


def test_parse_statements_takes_one_or_a_list_and_keeps_the_readable_ones() -> None:
    assert [s.id for s in parse_statements(raw())] == [raw()["id"]]
    listed = parse_statements([raw(), {"id": 5}, raw(id="second")])
    assert [s.id for s in listed] == [raw()["id"], "second"]
    with pytest.raises(PayloadError):
        parse_statements("a string")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["id", "actor", "verb", "object", "result", "timestamp", "stored", "mbox", "account",
     "homePage", "name", "objectType", "success", "completion"]
)  # fmt: skip
SHAPED = st.recursive(
    JSON | st.sampled_from([COMPLETED, PASSED, "mailto:a@b.example", "2026-12-01T09:00:00Z"]),
    lambda inner: st.dictionaries(FIELDS, inner, max_size=6) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(SHAPED)
def test_no_input_crashes_the_parser(data: Any) -> None:
    try:
        statements = parse_statements(data)
    except PayloadError:
        return
    for statement in statements:
        assert outcome(statement) in (*Completion, None)
        _ = (statement.learner, statement.activity, statement.position)
        Cursor().past([statement]).admits(statement)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_no_body_crashes_the_push_path(body: bytes) -> None:
    with contextlib.suppress(PayloadError):
        parse_statements(load_json(body))


def test_deeply_nested_bodies_are_payload_errors() -> None:
    with pytest.raises(PayloadError):
        parse_statements(load_json(b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(PayloadError):
        parse_statements(load_json(b'{"id": 1' + b"0" * 5000 + b"}"))


# --- pushed statements ---------------------------------------------------------------------------

PASSWORD = "xapi-push-S3cret-4d1e"  # distinctive: any leak is unambiguous
BASIC = BasicCredentials("ralph-forwarder", SecretStr(PASSWORD))
BEARER = BearerSecret(SecretStr(PASSWORD))


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def body(*statements: dict[str, Any]) -> bytes:
    return json.dumps(statements[0] if len(statements) == 1 else list(statements)).encode()


def test_a_push_with_basic_auth_gives_its_statements() -> None:
    single = verify_push(basic("ralph-forwarder", PASSWORD), body(raw()), BASIC)
    assert [s.id for s in single] == [raw()["id"]]
    listed = verify_push(
        {"Authorization": basic("ralph-forwarder", PASSWORD)["authorization"]},
        body(raw(), raw(PASSED, id="second")),
        BASIC,
    )
    assert [outcome(s) for s in listed] == [Completion.COMPLETED, Completion.PASSED]


def test_a_push_with_a_bearer_secret_gives_its_statements() -> None:
    pushed = verify_push({"Authorization": f"Bearer {PASSWORD}"}, body(raw()), BEARER)
    assert len(pushed) == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, BASIC),
        (basic("ralph-forwarder", PASSWORD + "x"), BASIC),
        (basic("ralph-forwarder", PASSWORD[:-1]), BASIC),
        (basic("someone-else", PASSWORD), BASIC),
        (basic("ralph-forwarder", ""), BASIC),
        ({"authorization": "Basic ralph-forwarder:" + PASSWORD}, BASIC),  # not base64
        ({"authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode()}, BASIC),
        ({"authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()}, BASIC),
        ({"authorization": f"Bearer {PASSWORD}"}, BASIC),
        ({"authorization": f"Bearer {PASSWORD}x"}, BEARER),
        ({"authorization": "Bearer"}, BEARER),
        ({"authorization": "Bearer é✓"}, BEARER),
        (basic("ralph-forwarder", PASSWORD), BEARER),
    ],
)
def test_a_push_with_wrong_credentials_is_refused(
    headers: dict[str, str], expected: BasicCredentials | BearerSecret
) -> None:
    with pytest.raises(AuthenticationError) as caught:
        verify_push(headers, body(raw()), expected)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("payload", [b"", b"not json", b"42", b'"a statement"', b"[" * 50_000])
def test_a_push_that_is_not_statements_is_a_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        verify_push(basic("ralph-forwarder", PASSWORD), payload, BASIC)


def test_a_push_skips_the_entries_it_cannot_read() -> None:
    pushed = verify_push(basic("ralph-forwarder", PASSWORD), body(raw(), {"id": 3}), BASIC)
    assert [s.id for s in pushed] == [raw()["id"]]


@pytest.mark.parametrize(
    "make",
    [
        lambda: BasicCredentials("", SecretStr("x")),
        lambda: BasicCredentials("a:b", SecretStr("x")),
        lambda: BasicCredentials("a", SecretStr("")),
        lambda: BearerSecret(SecretStr("")),
    ],
)
def test_empty_push_credentials_are_a_configuration_error(make: Any) -> None:
    with pytest.raises(ConfigurationError):
        make()


def test_credentials_never_show_in_their_repr() -> None:
    assert PASSWORD not in repr(BASIC) and PASSWORD not in repr(BEARER)


# --- the cursor --------------------------------------------------------------------------------


def test_the_cursor_admits_later_statements_and_unseen_ones_at_its_instant() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    cursor = Cursor(stored=at, seen=frozenset({"a"}))
    assert not cursor.admits(read(raw(id="a", stored=at.isoformat())))
    assert cursor.admits(read(raw(id="b", stored=at.isoformat())))
    assert not cursor.admits(read(raw(id="c", stored=(at - timedelta(microseconds=1)).isoformat())))
    assert cursor.admits(read(raw(id="a", stored=(at + timedelta(microseconds=1)).isoformat())))
    moved = cursor.past([read(raw(id="b", stored=at.isoformat()))])
    assert moved == Cursor(stored=at, seen=frozenset({"a", "b"}))
    assert cursor.since(timedelta(seconds=1)) == at - timedelta(seconds=1)
    assert Cursor().since(timedelta(seconds=1)) is None
    assert Cursor(stored=datetime.min.replace(tzinfo=UTC)).since(timedelta(days=1)) is not None


def test_a_cursor_read_back_without_an_offset_is_utc() -> None:
    cursor = Cursor.model_validate_json('{"stored": "2026-12-01T09:00:00", "seen": ["a"]}')
    assert cursor.stored == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert cursor.admits(read(raw(id="b", stored="2026-12-01T09:00:00Z")))
