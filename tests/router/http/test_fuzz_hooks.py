"""Property-based fuzzing of every signature verifier and payload parser, and of the routes that
run them: whatever a sender sends, the answer is a 4xx with a reason or a 2xx, never a 5xx, and a
refused delivery leaves nothing behind (no inbox row).

Bodies are recorded fixtures with bytes flipped, cut or grown, arbitrary JSON, deep nesting,
numbers past Python's digit limit and invalid UTF-8; headers are genuine, missing, or mangled
(ids, timestamps, signature schemes).
"""

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.base import Verifier
from connectors.canvas.jwt import LiveEventVerifier
from connectors.generic import webhook as generic
from connectors.github import webhook as github
from connectors.incidentio import webhook as incidentio
from connectors.jira import webhook as jira
from connectors.opsgenie import webhook as opsgenie
from connectors.pagerduty import webhook as pagerduty
from connectors.registry import SOURCES
from connectors.xapi.statements import BearerSecret, verify_push
from core.errors import AuthenticationError, PayloadError, UnsupportedEventError
from store.engine import Database
from tests.connectors.canvas.test_jwt import KID, SIGNING, jwks
from tests.router.http.hooks_support import (
    HMAC,
    OPSGENIE,
    SIGNERS,
    STANDARD,
    XAPI,
    canvas_token,
    hook_app,
    inbox_rows,
    xapi_headers,
)

ROOT = Path(pagerduty.__file__).parent.parent
FIXTURES = {
    "generic": "generic/fixtures/incident_resolved.json",
    "incidentio": "incidentio/fixtures/incident_created.json",
    "pagerduty": "pagerduty/fixtures/incident_triggered.json",
    "opsgenie": "opsgenie/fixtures/alert_created.json",
    "github": "github/fixtures/pull_request__opened.json",
    "jira": "jira/fixtures/issue_created.json",
}
VERIFIERS: dict[str, Verifier] = {
    "generic": generic.GenericVerifier(STANDARD),
    "incidentio": incidentio.IncidentIoVerifier(STANDARD),
    "pagerduty": pagerduty.PagerDutyVerifier(HMAC),
    "opsgenie": opsgenie.OpsgenieVerifier(OPSGENIE),
    "github": github.GitHubVerifier(HMAC),
    "jira": jira.JiraVerifier(HMAC),
}
SIGNATURE_HEADERS = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-signature",
    "x-pagerduty-signature",
    "x-cairn-token",
    "x-hub-signature-256",
    "x-hub-signature",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-event",
    "x-atlassian-webhook-identifier",
    "authorization",
]
FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
HTTP = settings(
    max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


def fixture(source: str) -> bytes:
    return (ROOT / FIXTURES[source]).read_bytes()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` with bytes flipped, a cut, or a hostile insertion."""
    kind = draw(st.sampled_from(["flip", "cut", "insert", "json", "deep", "digits", "utf8"]))
    if kind == "flip":
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if kind == "cut":
        return original[: draw(st.integers(0, len(original) - 1))]
    if kind == "insert":
        at = draw(st.integers(0, len(original)))
        return original[:at] + draw(st.binary(min_size=1, max_size=40)) + original[at:]
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "deep":
        depth = draw(st.integers(200, 3000))
        return b'{"event": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "digits":
        return b'{"event": {"id": 1, "n": ' + b"9" * draw(st.integers(4300, 9000)) + b"}}"
    return b'{"title": "' + draw(st.binary(min_size=1, max_size=20)) + b'\xff\xfe"}'


LATIN1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)


@st.composite
def mangled(draw: st.DrawFn, genuine: Mapping[str, str]) -> dict[str, str]:
    """Genuine headers with some dropped, replaced by junk or by near misses."""
    headers = dict(genuine)
    for name in draw(st.lists(st.sampled_from(SIGNATURE_HEADERS), max_size=4)):
        present = next((k for k in headers if k.lower() == name), None)
        action = draw(st.sampled_from(["drop", "junk", "scheme", "timestamp"]))
        if action == "drop" and present is not None:
            del headers[present]
        elif action == "junk":
            headers[present or name] = draw(LATIN1)
        elif action == "scheme":
            headers[present or name] = draw(
                st.sampled_from(["v1,", "v1=", "sha256=", "v1,!!!!", "Bearer", "Basic ###", ","])
            ) + draw(LATIN1)
        else:
            headers[present or name] = str(draw(st.integers(-(10**30), 10**30)))
    return headers


# --- verifiers and parsers alone -----------------------------------------------------------


@pytest.mark.parametrize("source", sorted(VERIFIERS))
@FAST
@given(data=st.data())
def test_a_verifier_only_ever_refuses_with_an_authentication_error(
    source: str, data: st.DataObject
) -> None:
    body = data.draw(st.one_of(mutated(fixture(source)), st.binary(max_size=200)))
    genuine = SIGNERS[source](fixture(source), "fuzz")
    headers = data.draw(
        st.one_of(
            mangled(genuine),
            st.dictionaries(st.sampled_from(SIGNATURE_HEADERS), st.text(max_size=60)),
        )
    )
    try:
        verified = VERIFIERS[source].verify(headers, body)
    except AuthenticationError as exc:
        assert str(exc)
        return
    assert verified.delivery_key  # only a body the genuine headers sign can get here


@pytest.mark.parametrize("source", sorted(VERIFIERS))
@FAST
@given(data=st.data())
def test_a_parser_only_ever_refuses_with_a_payload_error(source: str, data: st.DataObject) -> None:
    body = data.draw(st.one_of(mutated(fixture(source)), st.binary(max_size=200)))
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "d-1"}
    try:
        SOURCES[source].parse(headers, body)
    except PayloadError as exc:
        assert str(exc)


@FAST
@given(token=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_canvas_jwt_verification_only_refuses_with_a_reason(token: str | bytes) -> None:
    verifier = LiveEventVerifier(json.dumps(jwks((KID, SIGNING))))
    try:
        verifier.read(token)
    except (AuthenticationError, PayloadError, UnsupportedEventError) as exc:
        assert str(exc)


@FAST
@given(claims=st.dictionaries(st.sampled_from(["metadata", "body", "iat", "exp"]), JSON))
def test_canvas_signed_claims_of_any_shape_are_read_or_refused(claims: dict[str, Any]) -> None:
    verifier = LiveEventVerifier(json.dumps(jwks((KID, SIGNING))))
    claims = {"iat": 1, **claims} if not isinstance(claims.get("iat"), int) else claims
    try:
        verifier.read(canvas_token(claims))
    except (AuthenticationError, PayloadError, UnsupportedEventError) as exc:
        assert str(exc)


@FAST
@given(
    body=st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode())),
    authorization=st.one_of(st.just(f"Bearer {XAPI}"), LATIN1),
)
def test_xapi_push_verification_only_refuses_with_a_reason(body: bytes, authorization: str) -> None:
    try:
        verify_push({"Authorization": authorization}, body, BearerSecret(SecretStr(XAPI)))
    except (AuthenticationError, PayloadError) as exc:
        assert str(exc)


# --- through the routes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Database]]:
    with hook_app(tmp_path_factory.mktemp("fuzz"), auth_failures_per_minute=1_000_000) as app:
        yield app


def _post(client: TestClient, path: str, body: bytes, headers: Mapping[str, str]) -> Any:
    # As bytes: a client library refuses non-ASCII header text a raw sender can still send.
    raw = {name: value.encode("latin-1") for name, value in headers.items()}
    return client.post(path, content=body, headers=raw)


def _check(served: tuple[TestClient, Database], send: Callable[[], Any], signed: bool) -> None:
    db = served[1]
    before = inbox_rows(db)
    answer = send()
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["reason"], answer.text
        assert inbox_rows(db) == before, "a refused delivery left an inbox row"
    else:
        assert signed, f"an unsigned delivery was accepted: {answer.text}"


@pytest.mark.parametrize("source", sorted(VERIFIERS))
@HTTP
@given(data=st.data())
def test_hooks_never_answer_5xx_nor_keep_what_they_refuse(
    served: tuple[TestClient, Database], source: str, data: st.DataObject
) -> None:
    body = data.draw(mutated(fixture(source)))
    n = data.draw(st.integers(0, 10**9))
    genuine = SIGNERS[source](body, f"fuzz-{n}")
    forged = data.draw(st.booleans())
    headers = data.draw(mangled(SIGNERS[source](fixture(source), "x"))) if forged else genuine
    signed = not forged or source == "opsgenie"  # Opsgenie's token does not cover the body
    _check(served, lambda: _post(served[0], f"/hooks/{source}", body, headers), signed)


@HTTP
@given(data=st.data())
def test_xapi_and_canvas_hooks_never_answer_5xx(
    served: tuple[TestClient, Database], data: st.DataObject
) -> None:
    client = served[0]
    body = data.draw(st.one_of(st.binary(max_size=300), mutated(b'{"id": "s-1", "verb": {}}')))
    headers = xapi_headers() if data.draw(st.booleans()) else {"Authorization": data.draw(LATIN1)}
    answer = _post(client, "/hooks/xapi", body, headers)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["reason"]
    claims = data.draw(st.dictionaries(st.sampled_from(["metadata", "body"]), JSON))
    token = data.draw(st.one_of(st.just(canvas_token(claims).encode()), st.binary(max_size=200)))
    answer = _post(client, "/hooks/canvas", token, {"Content-Type": "application/jwt"})
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.json()["reason"]
