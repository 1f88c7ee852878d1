"""JsonApi and its vendor clients: HTTP failures → Cairn errors, retries, credential masking.

Error tests as tables: respx replaces only the httpx transport, so each row runs through the
real `JsonApi.get`, `connectors.retrying.send`/`run` and the PagerDuty / incident.io clients.
Waits go to the policy's own `sleep` field (recorded, not slept), so the file runs in a couple
of seconds; one test sleeps for real with millisecond waits.
"""

import json
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.incidentio.client import IncidentIoClient
from connectors.json_api import JsonApi
from connectors.pagerduty.client import PagerDutyClient
from connectors.retrying import Retryable, RetryPolicy
from core.errors import (
    AuthenticationError,
    CairnError,
    NotFoundError,
    PayloadError,
    TransientError,
)

BASE = "https://api.vendor.test"
SECRET = "s3cr3t-Cairn-credential-7f1d9a0c-do-not-leak"  # distinctive: any leak is unambiguous
IO_INCIDENT = {"id": "01X", "name": "Payments down", "incident_status": {"category": "live"}}


@dataclass(frozen=True)
class Target:
    """One client under test: how to build it, its first request, and a successful answer."""

    name: str
    make: Callable[[RetryPolicy], JsonApi]
    path: str
    call: Callable[[Any], Any]
    what: str
    ok: dict[str, Any]
    summary: Callable[[Any], Any]
    expected: Any
    also: dict[str, dict[str, Any]] = field(default_factory=dict)  # further routes on success


TARGETS = [
    Target(
        name="json_api",
        make=lambda p: JsonApi(BASE, {"Authorization": f"Bearer {SECRET}"}, policy=p),
        path="/things/1",
        call=lambda c: c.get("/things/1", "thing"),
        what="the API thing",
        ok={"id": 1, "name": "thing"},
        summary=lambda r: r,
        expected={"id": 1, "name": "thing"},
    ),
    Target(
        name="pagerduty",
        make=lambda p: PagerDutyClient(SECRET, base_url=BASE, policy=p),
        path="/incidents/P1/notes",
        call=lambda c: c.notes("P1"),
        what="PagerDuty incident notes",
        ok={"notes": [{"content": "Rolled back the deploy."}]},
        summary=lambda r: r,
        expected=["Rolled back the deploy."],
    ),
    Target(
        name="incidentio",
        make=lambda p: IncidentIoClient(SECRET, base_url=BASE, policy=p),
        path="/v2/incidents/01X",
        call=lambda c: c.incident("01X"),
        what="incident.io incident",
        ok={"incident": IO_INCIDENT},
        summary=lambda r: (r.external_id, r.title, r.action_items),
        expected=("01X", "Payments down", ("Alert on pool saturation",)),
        also={"/v2/follow_ups": {"follow_ups": [{"title": "Alert on pool saturation"}]}},
    ),
]
BY_NAME = {t.name: t for t in TARGETS}
each_target = pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """Every request must hit a route (assert_all_mocked) and every route must be hit."""
    with respx.mock(base_url=BASE, assert_all_mocked=True, assert_all_called=True) as router:
        yield router


# Building an httpx.Client costs ~20 ms (its SSL context), so the clients are shared across the
# tables, one per target and policy; respx patches the transport class, so it serves them all.
# Their policies record each wait in WAITS through the policy's own `sleep` field.
WAITS: list[float] = []
CLIENTS: dict[tuple[str, int, float, float], JsonApi] = {}


def client(name: str, *, attempts: int = 3, base_wait: float = 0.01, max_wait: float = 0.05) -> Any:
    """The shared client of target `name` with tiny waits, recorded instead of slept."""
    key = (name, attempts, base_wait, max_wait)
    if key not in CLIENTS:
        policy = RetryPolicy(attempts, base_wait, max_wait, sleep=WAITS.append)
        CLIENTS[key] = BY_NAME[name].make(policy)
    return CLIENTS[key]


@pytest.fixture(scope="module", autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    for shared in CLIENTS.values():
        shared.close()
    CLIENTS.clear()


@pytest.fixture(autouse=True)
def waits() -> list[float]:
    """The waits the retry loop asked for during this test."""
    WAITS.clear()
    return WAITS


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


def run(target: Target, api: respx.MockRouter, effects: list[Any], **policy: Any) -> Any:
    """Serve `effects` (responses/exceptions, one per request) on the target's first path."""
    route = api.get(target.path)
    route.side_effect = effects
    for path, body in target.also.items():
        api.get(path).respond(json=body)
    return route, target.call(client(target.name, **policy))


def fail(
    target: Target, api: respx.MockRouter, effects: list[Any], **policy: Any
) -> tuple[respx.Route, CairnError]:
    """Like `run`, for answers that must fail: the route and the Cairn error raised."""
    route = api.get(target.path)
    route.side_effect = effects
    with pytest.raises(CairnError) as info:
        target.call(client(target.name, **policy))
    return route, info.value


# --- answers that are never retried -------------------------------------------------------------

R = httpx.Response
REFUSED = ": the API refused the credentials"
ANSWERED = ": the API answered"
NOT_JSON = ": the answer is not JSON"
NOT_OBJECT = ": the answer is not a JSON object"
JSON_ERROR = json.JSONDecodeError

NOT_RETRIED = [
    # (id, response, error, message after "<vendor> <what>", type of __cause__ or None)
    ("401", R(401), AuthenticationError, f"{REFUSED} (401)", None),
    ("403", R(403), AuthenticationError, f"{REFUSED} (403)", None),
    ("404", R(404), NotFoundError, ": not found", None),
    ("400", R(400, json={"error": "bad"}), PayloadError, f"{ANSWERED} 400", None),
    ("409", R(409), PayloadError, f"{ANSWERED} 409", None),
    ("422", R(422, json={"error": "invalid"}), PayloadError, f"{ANSWERED} 422", None),
    ("501", R(501), PayloadError, f"{ANSWERED} 501", None),
    ("301-not-followed", R(301, headers={"Location": "/x"}), PayloadError, f"{ANSWERED} 301", None),
    ("html-body", R(200, text="<html>Bad gateway</html>"), PayloadError, NOT_JSON, JSON_ERROR),
    ("empty-200", R(200), PayloadError, NOT_JSON, JSON_ERROR),
    ("204", R(204), PayloadError, NOT_JSON, JSON_ERROR),
    ("invalid-utf8", R(200, content=b'{"a": "\xff"}'), PayloadError, NOT_JSON, UnicodeDecodeError),
    ("array", R(200, json=[{"id": 1}]), PayloadError, NOT_OBJECT, None),
    ("string", R(200, json="ok"), PayloadError, NOT_OBJECT, None),
    ("null", R(200, content=b"null"), PayloadError, NOT_OBJECT, None),
    ("number", R(200, json=42), PayloadError, NOT_OBJECT, None),
]


@each_target
@pytest.mark.parametrize(
    ("response", "error", "message", "cause"),
    [row[1:] for row in NOT_RETRIED],
    ids=[row[0] for row in NOT_RETRIED],
)
def test_final_answers_map_to_cairn_errors_after_one_request(
    api: respx.MockRouter,
    waits: list[float],
    target: Target,
    response: httpx.Response,
    error: type[CairnError],
    message: str,
    cause: type[BaseException] | None,
) -> None:
    route, raised = fail(target, api, [response])
    assert type(raised) is error
    assert str(raised) == target.what + message
    if cause is not None:  # `raise PayloadError(...) from exc`
        assert isinstance(raised.__cause__, cause)
    assert (route.call_count, waits) == (1, [])


# --- answers and transport failures that are retried, then become TransientError ---------------


@each_target
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_become_transient_once_attempts_run_out(
    api: respx.MockRouter, waits: list[float], target: Target, status: int
) -> None:
    route, raised = fail(target, api, [httpx.Response(status)] * 3, attempts=3)
    assert type(raised) is TransientError
    assert str(raised) == f"{target.what}: the API answered {status}"
    assert raised.retry_after is None  # no Retry-After header
    assert isinstance(raised.__cause__, Retryable)  # `raise TransientError(...) from exc`
    assert route.call_count == 3
    assert waits == [0.01, 0.02]  # exponential backoff from base_wait


TRANSPORT_ERRORS = [
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.CloseError,
    httpx.RemoteProtocolError,
    httpx.LocalProtocolError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
]


@each_target
@pytest.mark.parametrize("exc", TRANSPORT_ERRORS, ids=[e.__name__ for e in TRANSPORT_ERRORS])
def test_transport_errors_become_transient_once_attempts_run_out(
    api: respx.MockRouter, waits: list[float], target: Target, exc: type[httpx.TransportError]
) -> None:
    route, raised = fail(target, api, [exc] * 2, attempts=2)
    assert type(raised) is TransientError
    assert str(raised) == f"{target.what}: {exc.__name__}"
    assert raised.retry_after is None
    # TransientError from Retryable from the httpx exception: the original stays in the chain.
    assert isinstance(raised.__cause__, Retryable)
    assert type(raised.__cause__.__cause__) is exc
    assert (route.call_count, waits) == (2, [0.01])


# --- the retry loop ------------------------------------------------------------------------------

FIRST_FAILURES = [
    # (id, the first answer, the wait before the second request)
    ("503", httpx.Response(503), [0.01]),
    ("429", httpx.Response(429), [0.01]),
    ("ReadTimeout", httpx.ReadTimeout, [0.01]),
    ("ra-2", httpx.Response(429, headers={"Retry-After": "2"}), [2.0]),
    ("503-ra-3", httpx.Response(503, headers={"Retry-After": "3"}), [3.0]),  # on a 5xx too
    ("ra-0", httpx.Response(429, headers={"Retry-After": "0"}), [0.0]),
    ("ra-past-date", httpx.Response(429, headers={"Retry-After": http_date(-60)}), [0.0]),
    ("ra-junk", httpx.Response(429, headers={"Retry-After": "soon"}), [0.01]),  # backoff
    ("ra-1.5", httpx.Response(429, headers={"Retry-After": "1.5"}), [0.01]),  # not delta-seconds
]


@each_target
@pytest.mark.parametrize(
    ("first", "waited"), [r[1:] for r in FIRST_FAILURES], ids=[r[0] for r in FIRST_FAILURES]
)
def test_one_failure_then_success_makes_exactly_two_requests(
    api: respx.MockRouter, waits: list[float], target: Target, first: Any, waited: list[float]
) -> None:
    effects = [first, httpx.Response(200, json=target.ok)]
    route, result = run(target, api, effects, max_wait=30.0)
    assert target.summary(result) == target.expected
    assert route.call_count == 2
    assert waits == waited


@each_target
def test_retry_after_as_http_date_is_honoured(
    api: respx.MockRouter, waits: list[float], target: Target
) -> None:
    first = httpx.Response(429, headers={"Retry-After": http_date(10)})
    effects = [first, httpx.Response(200, json=target.ok)]
    route, result = run(target, api, effects, max_wait=30.0)
    assert target.summary(result) == target.expected
    assert route.call_count == 2
    [waited] = waits
    assert 8.0 < waited <= 10.0  # HTTP dates have whole seconds


def test_recovers_on_the_last_allowed_attempt(api: respx.MockRouter, waits: list[float]) -> None:
    target = BY_NAME["json_api"]
    effects = [httpx.Response(503), httpx.ConnectError, httpx.Response(200, json=target.ok)]
    route, result = run(target, api, effects, attempts=3)
    assert result == target.ok
    assert (route.call_count, waits) == (3, [0.01, 0.02])


@pytest.mark.parametrize(
    ("attempts", "waited"),
    [
        (1, []),
        (2, [0.01]),
        (4, [0.01, 0.02, 0.04]),
        (6, [0.01, 0.02, 0.04, 0.05, 0.05]),  # the backoff is capped at max_wait
    ],
)
def test_retries_stop_per_the_policy(
    api: respx.MockRouter, waits: list[float], attempts: int, waited: list[float]
) -> None:
    effects = [httpx.Response(503)] * attempts
    route, raised = fail(BY_NAME["json_api"], api, effects, attempts=attempts, max_wait=0.05)
    assert type(raised) is TransientError
    assert route.call_count == attempts
    assert waits == pytest.approx(waited)


def test_default_policy_makes_four_attempts(api: respx.MockRouter) -> None:
    recorded: list[float] = []
    policy = RetryPolicy(sleep=recorded.append)  # defaults: 4 attempts, base 0.5 s, max 30 s
    route = api.get("/incidents/P1/notes")
    route.side_effect = [httpx.Response(502)] * 4
    pd = PagerDutyClient(SECRET, base_url=BASE, policy=policy)
    with pd, pytest.raises(TransientError, match="502"):
        pd.notes("P1")
    assert (route.call_count, recorded) == (4, [0.5, 1.0, 2.0])


def test_really_sleeps_with_time_sleep_by_default(api: respx.MockRouter) -> None:
    policy = RetryPolicy(attempts=3, base_wait=0.001, max_wait=0.002)  # sleep=time.sleep
    route = api.get("/things/1")
    route.side_effect = [httpx.Response(503), httpx.Response(503), httpx.Response(200, json={})]
    with JsonApi(BASE, {}, policy=policy) as plain:
        assert plain.get("/things/1", "thing") == {}
    assert route.call_count == 3


@each_target
@pytest.mark.parametrize(
    ("seconds", "as_date"),
    [(120, False), (31, False), (3600, True)],
    ids=["seconds", "just-over-max", "http-date"],
)
def test_retry_after_beyond_max_wait_is_handed_back_not_slept(
    api: respx.MockRouter, waits: list[float], target: Target, seconds: int, as_date: bool
) -> None:
    value = http_date(seconds) if as_date else str(seconds)
    first = httpx.Response(429, headers={"Retry-After": value})
    route, raised = fail(target, api, [first], attempts=4, max_wait=30.0)
    assert type(raised) is TransientError
    assert str(raised) == f"{target.what}: the API answered 429"
    assert raised.retry_after == pytest.approx(seconds, abs=1.5)  # dates: whole seconds
    assert (route.call_count, waits) == (1, [])


def test_long_retry_after_on_a_later_attempt_stops_there(
    api: respx.MockRouter, waits: list[float]
) -> None:
    effects = [httpx.Response(503), httpx.Response(503, headers={"Retry-After": "600"})]
    route, raised = fail(BY_NAME["json_api"], api, effects, attempts=4)
    assert type(raised) is TransientError
    assert raised.retry_after == 600.0
    assert (route.call_count, waits) == (2, [0.01])


def test_short_retry_after_on_the_last_attempt_is_carried(
    api: respx.MockRouter, waits: list[float]
) -> None:
    effects = [httpx.Response(429, headers={"Retry-After": "1"})] * 2
    route, raised = fail(BY_NAME["incidentio"], api, effects, attempts=2, max_wait=30.0)
    assert type(raised) is TransientError
    assert raised.retry_after == 1.0  # the pipeline can wait this long before its next try
    assert (route.call_count, waits) == (2, [1.0])


def test_second_request_of_incidentio_is_translated_too(api: respx.MockRouter) -> None:
    api.get("/v2/incidents/01X").respond(json={"incident": IO_INCIDENT})
    follow_ups = api.get("/v2/follow_ups", params={"incident_id": "01X"}).respond(404)
    with pytest.raises(NotFoundError, match=r"^incident\.io follow-ups: not found$"):
        client("incidentio").incident("01X")
    assert follow_ups.call_count == 1


# --- vendor answers of the wrong shape ----------------------------------------------------------

SHAPES = [
    # (id, target, body, message start, raised from pydantic's ValidationError)
    ("pd-notes-missing", "pagerduty", {}, "PagerDuty incident notes: no `notes` list", False),
    ("pd-notes-object", "pagerduty", {"notes": {}}, "PagerDuty incident notes: no `notes`", False),
    ("io-no-incident", "incidentio", {}, "incident.io incident: ", True),
    ("io-no-status", "incidentio", {"incident": {"id": "01X"}}, "incident.io incident: ", True),
]


@pytest.mark.parametrize(
    ("name", "body", "message", "chained"), [r[1:] for r in SHAPES], ids=[r[0] for r in SHAPES]
)
def test_answers_of_the_wrong_shape_are_payload_errors(
    api: respx.MockRouter, name: str, body: dict[str, Any], message: str, chained: bool
) -> None:
    target = BY_NAME[name]
    route = api.get(target.path).respond(json=body)
    for path, answer in target.also.items():
        api.get(path).respond(json=answer)
    with pytest.raises(PayloadError) as info:
        target.call(client(name))
    assert str(info.value).startswith(message)
    if chained:  # `raise PayloadError(...) from exc` around the ValidationError
        assert isinstance(info.value.__cause__, ValidationError)
    assert route.call_count == 1


def test_pagerduty_incident_of_the_wrong_shape_chains_the_validation_error(
    api: respx.MockRouter,
) -> None:
    api.get("/incidents/P1").respond(json={"incident": {"id": "P1"}})
    with pytest.raises(PayloadError, match=r"^PagerDuty incident: status: Field required") as info:
        client("pagerduty").incident("P1")
    assert isinstance(info.value.__cause__, ValidationError)


# --- the credential -----------------------------------------------------------------------------


@each_target
def test_repr_masks_the_credential(target: Target) -> None:
    text = repr(client(target.name))
    assert SECRET not in text
    shared = client(target.name)
    assert text == f"{type(shared).__name__}(base_url='{BASE}', {shared.credential}=***)"


def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server that quotes the credential back in its answer, as some error pages do."""
    return lambda request: httpx.Response(
        status, text=f"bad credentials: {request.headers['authorization']}"
    )


LEAK_SCENARIOS = {
    "401-echo": [echo(401)],
    "403": [httpx.Response(403)],
    "404": [httpx.Response(404)],
    "400-echo": [echo(400)],
    "non-json-echo": [echo(200)],
    "array": [httpx.Response(200, json=[SECRET])],
    "429-long": [httpx.Response(429, headers={"Retry-After": "120"})],
    "503-echo": [echo(503)] * 2,
    "ConnectError": [httpx.ConnectError] * 2,
    "ReadTimeout": [httpx.ReadTimeout] * 2,
}


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The error and everything it was raised from or during."""
    link: BaseException | None = exc
    while link is not None:
        yield link
        link = link.__cause__ or link.__context__


@each_target
@pytest.mark.parametrize("effects", LEAK_SCENARIOS.values(), ids=LEAK_SCENARIOS.keys())
def test_credential_never_appears_in_raised_errors(
    api: respx.MockRouter, target: Target, effects: list[Any]
) -> None:
    route, raised = fail(target, api, effects, attempts=2)
    # The credential really was sent (and echoed back in some answers): its absence is meaningful.
    assert SECRET in route.calls.last.request.headers["authorization"]
    assert SECRET not in "".join(traceback.format_exception(raised))  # the whole chain
    assert all(SECRET not in f"{link} {link!r}" for link in chain(raised))


# --- odd answers: a mangled body, odd Retry-After, proxy 5xx --------------------------------------


@each_target
def test_undecodable_compressed_body_is_a_cairn_error(
    api: respx.MockRouter, target: Target
) -> None:
    def corrupt(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    route = api.get(target.path).mock(side_effect=corrupt)
    with pytest.raises(TransientError) as info:
        target.call(client(target.name))
    assert isinstance(info.value.__cause__.__cause__, httpx.DecodingError)
    assert route.call_count > 1  # retried, as a body cut on the way may arrive whole next time


@pytest.mark.parametrize("value", ["²", "¹⁰"], ids=["superscript-2", "superscript-10"])
def test_unparseable_unicode_retry_after_is_ignored(
    api: respx.MockRouter, waits: list[float], value: str
) -> None:
    limited = httpx.Response(429, headers=[(b"Retry-After", value.encode())])
    route, raised = fail(BY_NAME["json_api"], api, [limited] * 2, attempts=2)
    assert type(raised) is TransientError
    assert raised.retry_after is None
    assert (route.call_count, waits) == (2, [0.01])


@pytest.mark.parametrize("follow_ups", [5, True], ids=["number", "true"])
def test_incidentio_follow_ups_that_are_not_a_list_are_a_payload_error(
    api: respx.MockRouter, follow_ups: object
) -> None:
    api.get("/v2/incidents/01X").respond(json={"incident": IO_INCIDENT})
    api.get("/v2/follow_ups").respond(json={"follow_ups": follow_ups})
    with pytest.raises(PayloadError):
        client("incidentio").incident("01X")


@pytest.mark.parametrize("status", [522, 524])
def test_proxy_timeouts_are_transient(api: respx.MockRouter, status: int) -> None:
    route = api.get("/things/1")
    route.side_effect = [httpx.Response(status)] * 3
    with pytest.raises(TransientError):
        client("json_api", attempts=3).get("/things/1", "thing")
    assert route.call_count == 3
