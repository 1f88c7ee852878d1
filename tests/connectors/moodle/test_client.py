"""MoodleClient against the contract fake on loopback: calls, encoding, errors, retries, secrets.

Waits go to the retry policy's `sleep` (recorded, not slept). Every Moodle exception body in the
fixtures is served through the real HTTP path and must come out as the right Cairn error.
"""

import json
import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import pytest
from pydantic import SecretStr

from connectors.fake_http import serve
from connectors.lms import Completion, Enrolment, LmsClient
from connectors.moodle.client import MoodleClient, encode
from connectors.moodle.fake import FIXTURES, MoodleFake, decode
from connectors.retrying import RetryPolicy
from core.errors import (
    AuthenticationError,
    CairnError,
    NotFoundError,
    PayloadError,
    TransientError,
)

TOKEN = "m00dle-Cairn-token-5e1f0b7a-do-not-leak"  # distinctive: any leak is unambiguous
DUE = datetime(2026, 12, 18, 17, 0, tzinfo=UTC)


F = TypeVar("F", bound=MoodleFake)


class Install(Protocol):
    """Serves a fake on the module's loopback server; returns it."""

    def __call__(self, fake: F) -> F: ...


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    """One loopback server for the module (each stops in 0.5 s); each test installs its fake."""
    current: list[MoodleFake] = []
    with serve(lambda *request: current[0].answer(*request)) as url:

        def use(fake: F) -> F:
            fake.url = url
            current[:] = [fake]
            return fake

        yield use


@pytest.fixture
def fake(install: Install) -> MoodleFake:
    moodle = MoodleFake(token=TOKEN)
    moodle.add_user("dana.ops@example.com")  # id 7
    moodle.add_course("POOL-101", "Connection pools under load")  # id 42
    return install(moodle)


def client(fake: MoodleFake, waits: list[float] | None = None, **options: Any) -> MoodleClient:
    sleep = waits.append if waits is not None else (lambda _: None)
    return fake.client(policy=RetryPolicy(attempts=3, sleep=sleep), **options)


def test_it_is_an_lms_client(fake: MoodleFake) -> None:
    lms: LmsClient = client(fake)
    assert lms.name == "moodle"


# --- the happy path ----------------------------------------------------------------------------


def test_find_user_by_email(fake: MoodleFake) -> None:
    moodle = client(fake)
    assert moodle.find_user("dana.ops@example.com") == "7"
    assert moodle.find_user("Dana.Ops@Example.com") == "7"  # also asked for in lower case
    assert moodle.find_user("nobody@example.com") is None
    function, params = fake.calls[0]
    assert function == "core_user_get_users_by_field"
    assert params == {"field": "email", "values": ["dana.ops@example.com"]}


def test_two_users_sharing_an_email_are_a_payload_error(fake: MoodleFake) -> None:
    fake.add_user("shared@example.com")
    fake.add_user("shared@example.com", "Sam", "Other")
    with pytest.raises(PayloadError, match="2 users"):
        client(fake).find_user("shared@example.com")


def test_enrol_sends_moodles_array_encoding_with_the_due_date_as_timeend(fake: MoodleFake) -> None:
    enrolment = client(fake).enrol("7", "42", DUE)
    assert enrolment == Enrolment(user_id="7", module="42", handle="42/7", due_at=DUE)
    assert fake.enrolments[(7, 42)] == {
        "roleid": 5,
        "timestart": 0,
        "timeend": int(DUE.timestamp()),
        "status": 0,
    }
    function, params = fake.calls[-1]
    assert function == "enrol_manual_enrol_users"
    assert params == {
        "enrolments": [
            {"roleid": "5", "userid": "7", "courseid": "42", "timeend": str(int(DUE.timestamp()))}
        ]
    }


def test_enrol_twice_enrols_once(fake: MoodleFake) -> None:
    moodle = client(fake)
    first = moodle.enrol("7", "42", DUE)
    second = moodle.enrol("7", "42", DUE)
    assert first == second
    assert fake.count("enrol_manual_enrol_users") == 1
    assert fake.count("core_enrol_get_users_courses") == 2
    assert list(fake.enrolments) == [(7, 42)]


def test_enrol_without_a_due_date_or_with_grace(fake: MoodleFake) -> None:
    client(fake, enrolment_ends_after_due=None).enrol("7", "42", DUE)
    assert fake.enrolments[(7, 42)]["timeend"] == 0
    fake.enrolments.clear()
    client(fake, enrolment_ends_after_due=timedelta(days=14)).enrol("7", "42", DUE)
    assert fake.enrolments[(7, 42)]["timeend"] == int((DUE + timedelta(days=14)).timestamp())


def test_enrol_writes_nothing_for_a_learner_already_enrolled(fake: MoodleFake) -> None:
    fake.enrol(7, 42)  # by an administrator, without an end date
    client(fake).enrol("7", "42", DUE)
    assert fake.count("enrol_manual_enrol_users") == 0
    assert fake.enrolments[(7, 42)]["timeend"] == 0


def test_a_suspended_learner_is_enrolled_again(fake: MoodleFake) -> None:
    fake.enrol(7, 42, suspended=True)
    client(fake).enrol("7", "42", DUE)
    assert fake.count("enrol_manual_enrol_users") == 1
    assert fake.enrolments[(7, 42)]["status"] == 0


def test_progress_before_and_after_completion(fake: MoodleFake) -> None:
    moodle = client(fake)
    enrolment = moodle.enrol("7", "42", DUE)
    before = moodle.progress(enrolment)
    assert before.completion is Completion.OPEN
    assert before.detail == "0 of 1 completion criteria met"
    done = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    fake.complete(7, 42, at=done)
    after = moodle.progress(enrolment)
    assert after.completion is Completion.COMPLETED
    assert after.at == done
    assert after.detail == "1 of 1 completion criteria met"


def test_withdraw_unenrols_and_progress_then_reads_open(fake: MoodleFake) -> None:
    moodle = client(fake)
    enrolment = moodle.enrol("7", "42", DUE)
    assert moodle.withdraw(enrolment) is True
    assert not fake.is_enrolled(7, 42)
    assert fake.calls[-1] == (
        "enrol_manual_unenrol_users",
        {"enrolments": [{"userid": "7", "courseid": "42"}]},
    )
    assert moodle.withdraw(enrolment) is True  # nothing left to take back: still fine
    progress = moodle.progress(enrolment)
    assert progress.completion is Completion.OPEN
    assert progress.detail is not None and "not enrolled" in progress.detail


@pytest.mark.parametrize("code", ["wscannotunenrol", "nopermissions"])
def test_withdraw_is_false_where_moodle_does_not_allow_it(fake: MoodleFake, code: str) -> None:
    moodle = client(fake)
    enrolment = moodle.enrol("7", "42", DUE)
    fake.fault(code)
    assert moodle.withdraw(enrolment) is False


def test_bad_ids_never_reach_moodle(fake: MoodleFake) -> None:
    moodle = client(fake)
    for user, module in [("7", "POOL-101"), ("dana", "42"), ("7", "0"), ("-7", "42")]:
        with pytest.raises(PayloadError, match="positive integer"):
            moodle.enrol(user, module, DUE)
    assert fake.requests == []


# --- Moodle's HTTP-200 exception bodies --------------------------------------------------------

EXCEPTIONS: dict[str, dict[str, Any]] = json.loads((FIXTURES / "exceptions.json").read_text())
EXPECTED: dict[str, type[CairnError]] = {
    "invalidtoken": AuthenticationError,
    "accessexception": AuthenticationError,
    "nopermissions": AuthenticationError,
    "sitemaintenance": TransientError,
    "invalidrecord": PayloadError,
    "invalidparameter": PayloadError,
    "usernotenroled": PayloadError,  # outside progress, where it reads as OPEN
    "nocriteriaset": PayloadError,
    "cannotviewreport": PayloadError,
    "wscannotunenrol": PayloadError,
    "wsusercannotassign": PayloadError,
}


def test_every_recorded_exception_has_an_expectation() -> None:
    assert set(EXCEPTIONS) == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_exception_bodies_are_translated_once(fake: MoodleFake, code: str) -> None:
    fake.fault(code)
    with pytest.raises(EXPECTED[code]) as caught:
        client(fake).find_user("dana.ops@example.com")
    message = str(caught.value)
    assert message.startswith("Moodle core_user_get_users_by_field: ")
    assert code in message
    assert EXCEPTIONS[code]["message"][:40] in message
    assert fake.count("core_user_get_users_by_field") == 1  # a body error is never retried


def test_a_wrong_token_is_an_authentication_error(fake: MoodleFake) -> None:
    with pytest.raises(AuthenticationError, match="invalidtoken"):
        client(fake, token="wrong-token").find_user("dana.ops@example.com")


def test_an_unknown_function_and_one_outside_the_service(fake: MoodleFake) -> None:
    with pytest.raises(PayloadError, match="invalidrecord"):
        client(fake).call("core_course_no_such_function", {})
    fake.functions.discard("core_enrol_get_users_courses")
    with pytest.raises(AuthenticationError, match="accessexception"):
        client(fake).enrol("7", "42", DUE)


def test_bad_parameters_and_unknown_records_are_payload_errors(fake: MoodleFake) -> None:
    moodle = client(fake)
    with pytest.raises(PayloadError, match="invalidparameter"):
        moodle.call("enrol_manual_enrol_users", {"enrolments": [{"roleid": 5, "userid": 7}]})
    with pytest.raises(PayloadError, match="invalidparameter"):
        moodle.enrol("7", "999", DUE)  # no such course
    with pytest.raises(PayloadError, match="wsusercannotassign"):
        client(fake, student_role_id=1).enrol("7", "42", DUE)
    with pytest.raises(PayloadError, match="invalidrecord"):
        moodle.progress(Enrolment("999", "42", "42/999"))


def test_a_course_without_completion_criteria(fake: MoodleFake) -> None:
    course = fake.add_course("EMPTY-1", criteria=0)
    moodle = client(fake)
    enrolment = moodle.enrol("7", str(course), None)
    with pytest.raises(PayloadError, match="nocriteriaset"):
        moodle.progress(enrolment)


# --- HTTP failures through the shared retry path -----------------------------------------------


def test_429_with_retry_after_is_retried_then_succeeds(fake: MoodleFake) -> None:
    waits: list[float] = []
    fake.fail(429, times=2, retry_after="3")
    assert client(fake, waits).find_user("dana.ops@example.com") == "7"
    assert waits == [3.0, 3.0]
    assert fake.count("core_user_get_users_by_field") == 3


def test_5xx_is_retried_then_becomes_a_transient_error(fake: MoodleFake) -> None:
    waits: list[float] = []
    fake.fail(503, times=5)
    with pytest.raises(TransientError, match="503"):
        client(fake, waits).enrol("7", "42", DUE)
    assert len(waits) == 2  # three attempts


def test_a_long_retry_after_is_handed_back_not_slept(fake: MoodleFake) -> None:
    waits: list[float] = []
    fake.fail(429, retry_after="120")
    with pytest.raises(TransientError) as caught:
        client(fake, waits).find_user("dana.ops@example.com")
    assert caught.value.retry_after == 120.0
    assert waits == []


@pytest.mark.parametrize("status", [401, 403])
def test_http_401_and_403_are_authentication_errors(fake: MoodleFake, status: int) -> None:
    fake.fail(status)
    with pytest.raises(AuthenticationError, match=str(status)):
        client(fake).find_user("dana.ops@example.com")


def test_a_wrong_base_url_is_not_found(fake: MoodleFake) -> None:
    wrong = MoodleClient(fake.url + "/moodle", TOKEN, policy=RetryPolicy(attempts=1))
    with pytest.raises(NotFoundError, match="core_user_get_users_by_field"):
        wrong.find_user("dana.ops@example.com")


def test_an_answer_of_the_wrong_shape_is_a_payload_error(install: Install) -> None:
    class Odd(MoodleFake):
        def _serve(self, function: str, token: str, pairs: list[tuple[str, str]]) -> Any:
            return {"users": []}

    odd = install(Odd(token=TOKEN))
    with pytest.raises(PayloadError, match="not a list"):
        odd.client().find_user("dana.ops@example.com")


# --- secrets -----------------------------------------------------------------------------------


def test_the_token_never_appears_in_reprs_or_errors(fake: MoodleFake) -> None:
    moodle = client(fake)
    assert TOKEN not in repr(moodle)
    assert "token=***" in repr(moodle)
    assert TOKEN not in repr(MoodleClient("https://moodle.example.com", SecretStr(TOKEN)))
    failures: list[BaseException] = []
    for code in EXPECTED:
        fake.fault(code)
        with pytest.raises(CairnError) as caught:
            moodle.find_user("dana.ops@example.com")
        failures.append(caught.value)
    fake.fail(500, times=3)
    with pytest.raises(TransientError) as transient:
        moodle.find_user("dana.ops@example.com")
    failures.append(transient.value)
    for failure in failures:
        text = "".join(traceback.format_exception(failure))
        assert TOKEN not in text


def test_a_token_echoed_by_moodle_is_masked(install: Install) -> None:
    class Echo(MoodleFake):
        def _serve(self, function: str, token: str, pairs: list[tuple[str, str]]) -> Any:
            return {"exception": "moodle_exception", "errorcode": "x", "message": f"bad {token}"}

    echo = install(Echo(token=TOKEN))
    with pytest.raises(PayloadError) as caught:
        echo.client().find_user("dana.ops@example.com")
    assert TOKEN not in str(caught.value)
    assert "bad ***" in str(caught.value)


def test_the_token_is_sent_in_the_body_not_the_url(install: Install) -> None:
    targets: list[str] = []
    bodies: list[bytes] = []

    class Spy(MoodleFake):
        def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
            targets.append(target)
            bodies.append(body)
            return super().answer(method, target, headers, body)

    spy = install(Spy(token=TOKEN))
    spy.add_user("dana.ops@example.com")
    assert spy.client().find_user("dana.ops@example.com") == "7"
    assert targets == ["/webservice/rest/server.php"]
    assert f"wstoken={TOKEN}".encode() in bodies[0]
    assert b"moodlewsrestformat=json" in bodies[0]


# --- the encoding ------------------------------------------------------------------------------


def test_encode_and_the_fakes_decode_agree() -> None:
    params = {
        "enrolments": [
            {"roleid": 5, "userid": 7, "courseid": 42},
            {"roleid": 5, "userid": 8, "courseid": 42, "suspend": True},
        ],
        "field": "email",
    }
    pairs = encode(params)
    assert pairs[:3] == [
        ("enrolments[0][roleid]", "5"),
        ("enrolments[0][userid]", "7"),
        ("enrolments[0][courseid]", "42"),
    ]
    assert ("enrolments[1][suspend]", "1") in pairs
    assert decode(pairs) == {
        "enrolments": [
            {"roleid": "5", "userid": "7", "courseid": "42"},
            {"roleid": "5", "userid": "8", "courseid": "42", "suspend": "1"},
        ],
        "field": "email",
    }


def test_the_fake_serves_on_its_own_too() -> None:
    moodle = MoodleFake(token=TOKEN)
    moodle.add_user("dana.ops@example.com")
    with moodle.running():
        assert moodle.client().find_user("dana.ops@example.com") == "7"


def test_the_token_never_appears_in_logs(
    fake: MoodleFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    moodle = client(fake)
    fake.fail(503)
    enrolment = moodle.enrol(moodle.find_user("dana.ops@example.com") or "", "42", DUE)
    moodle.progress(enrolment)
    moodle.withdraw(enrolment)
    assert caplog.records
    assert TOKEN not in caplog.text
