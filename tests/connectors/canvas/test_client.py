"""CanvasClient, driven by the real `canvasapi`, against the contract fake on loopback.

Covers find (across `Link`-header pages), enrol (once, one override, reused), withdraw,
progress, the error translation of every canvasapi exception, retries with Retry-After, and
secrets. Waits go to the retry policy's `sleep` (recorded, not slept).
"""

import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import pytest
from canvasapi.exceptions import (
    BadRequest,
    CanvasException,
    Conflict,
    Forbidden,
    InvalidAccessToken,
    RateLimitExceeded,
    ResourceDoesNotExist,
    Unauthorized,
    UnprocessableEntity,
)
from pydantic import SecretStr

from connectors.canvas.client import (
    CanvasClient,
    parse_module,
    submission_progress,
    translate,
)
from connectors.canvas.fake import CanvasFake
from connectors.fake_http import Answer, serve
from connectors.lms import Completion, Enrolment, LmsClient, Progress
from connectors.retrying import Retryable, RetryPolicy
from core.errors import (
    AuthenticationError,
    CairnError,
    ConfigurationError,
    PayloadError,
    TransientError,
)

TOKEN = "7~canvas-Cairn-token-3c9a51e2-do-not-leak"  # distinctive: any leak is unambiguous
DUE = datetime(2026, 12, 18, 17, 0, tzinfo=UTC)
F = TypeVar("F", bound=CanvasFake)


class Install(Protocol):
    """Serves a fake on the module's loopback server; returns it."""

    def __call__(self, fake: F) -> F: ...


@pytest.fixture(scope="module")
def install() -> Iterator[Install]:
    """One loopback server for the module (each stops in 0.5 s); each test installs its fake."""
    current: list[CanvasFake] = []
    with serve(lambda *request: current[0].answer(*request)) as url:

        def use(fake: F) -> F:
            fake.url = url
            current[:] = [fake]
            return fake

        yield use


@pytest.fixture
def fake(install: Install) -> CanvasFake:
    canvas = CanvasFake(token=TOKEN)
    canvas.add_user("dana.ops@example.com", "Dana Ops")  # id 1021
    canvas.add_assignment()  # 565/8812
    return install(canvas)


def client(fake: CanvasFake, waits: list[float] | None = None, **options: Any) -> CanvasClient:
    sleep = waits.append if waits is not None else (lambda _: None)
    return fake.client(policy=RetryPolicy(attempts=3, sleep=sleep), **options)


def test_it_is_an_lms_client(fake: CanvasFake) -> None:
    lms: LmsClient = client(fake)
    assert lms.name == "canvas"


# --- find --------------------------------------------------------------------------------------


def test_find_user_by_email(fake: CanvasFake) -> None:
    canvas = client(fake)
    assert canvas.find_user("dana.ops@example.com") == "1021"
    assert canvas.find_user("Dana.Ops@Example.com") == "1021"
    assert canvas.find_user("nobody@example.com") is None
    assert fake.count("GET /accounts/self/users") == 3


def test_find_user_by_login_id_when_the_email_is_not_shown(fake: CanvasFake) -> None:
    fake.add_user("personal@example.net", "Sam Lee", login_id="sam.lee@example.com")
    fake.users[1022].pop("email")
    assert client(fake).find_user("sam.lee@example.com") == "1022"


def test_a_search_spanning_pages_is_followed_to_the_end(install: Install) -> None:
    fake = install(CanvasFake(token=TOKEN, max_per_page=2))
    for name in ("joann", "leeann", "marianne", "suzann", "roseann"):
        fake.add_user(f"{name}@example.com", f"{name.title()} Able")
    wanted = fake.add_user("ann@example.com", "Ann Zimmer")  # sorts last: on the third page
    assert client(fake, account_id="1").find_user("ann@example.com") == str(wanted)
    assert fake.count("GET /accounts/1/users") == 3


def test_two_users_with_one_email_are_a_payload_error(fake: CanvasFake) -> None:
    fake.add_user("shared@example.com", "Sam One")
    fake.add_user("shared@example.com", "Sam Two")
    with pytest.raises(PayloadError, match="2 users"):
        client(fake).find_user("shared@example.com")


def test_an_unknown_account_is_a_payload_error(fake: CanvasFake) -> None:
    with pytest.raises(PayloadError, match="not found"):
        client(fake, account_id="77").find_user("dana.ops@example.com")


# --- enrol -------------------------------------------------------------------------------------


def test_enrol_creates_one_enrollment_and_one_override(fake: CanvasFake) -> None:
    canvas = client(fake)
    first = canvas.enrol("1021", "565/8812", DUE)
    second = canvas.enrol("1021", "565/8812", DUE)
    assert first == second
    assert first.module == "565/8812" and first.user_id == "1021" and first.due_at == DUE
    [enrollment] = fake.student_enrollments(565, 1021)
    assert first.handle == str(enrollment["id"])
    assert enrollment["enrollment_state"] == "active"
    assert enrollment["type"] == "StudentEnrollment"
    [override] = fake.overrides_for(8812)
    assert override["student_ids"] == [1021]
    assert override["due_at"] == "2026-12-18T17:00:00Z"
    assert fake.count("POST /courses/565/enrollments") == 1
    assert fake.count("POST /courses/565/assignments/8812/overrides") == 1
    assert fake.count("PUT ") == 0


def test_enrol_reuses_an_existing_enrollment_and_override(fake: CanvasFake) -> None:
    canvas = client(fake)
    canvas.enrol("1021", "565/8812", None)  # enrolled, no override yet
    assert fake.overrides_for(8812) == []
    canvas.enrol("1021", "565/8812", DUE)
    later = DUE + timedelta(days=3)
    canvas.enrol("1021", "565/8812", later)
    [override] = fake.overrides_for(8812)
    assert override["due_at"] == "2026-12-21T17:00:00Z"
    assert fake.count("POST /courses/565/enrollments") == 1
    assert fake.count("POST /courses/565/assignments/8812/overrides") == 1
    assert fake.count("PUT /courses/565/assignments/8812/overrides") == 1


def test_a_shared_override_is_left_alone(fake: CanvasFake) -> None:
    other = fake.add_user("sam@example.com", "Sam Lee")
    canvas = client(fake)
    canvas.enrol(str(other), "565/8812", None)
    canvas.enrol("1021", "565/8812", None)
    fake.overrides[1] = {
        "id": 1,
        "assignment_id": 8812,
        "title": "2 students",
        "student_ids": [1021, other],
        "due_at": "2026-12-24T17:00:00Z",
    }
    canvas.enrol("1021", "565/8812", DUE)
    assert fake.overrides[1]["due_at"] == "2026-12-24T17:00:00Z"
    assert fake.count("POST /courses/565/assignments/8812/overrides") == 0


def test_a_concluded_learner_is_enrolled_again(fake: CanvasFake) -> None:
    canvas = client(fake)
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    assert canvas.withdraw(enrolment) is True
    again = canvas.enrol("1021", "565/8812", DUE)
    assert again.handle == enrolment.handle  # Canvas reuses the learner's enrollment
    assert fake.student_enrollments(565, 1021)[0]["enrollment_state"] == "active"


@pytest.mark.parametrize(
    ("user", "module", "match"),
    [
        ("1021", "565", "<course id>/<assignment id>"),
        ("1021", "565/x", "assignment id"),
        ("dana", "565/8812", "user id"),
        ("1021", "0/8812", "course id"),
    ],
)
def test_bad_ids_never_reach_canvas(fake: CanvasFake, user: str, module: str, match: str) -> None:
    with pytest.raises(PayloadError, match=match):
        client(fake).enrol(user, module, DUE)
    assert fake.requests == []


def test_an_unknown_assignment_enrols_nobody(fake: CanvasFake) -> None:
    with pytest.raises(PayloadError, match="not found"):
        client(fake).enrol("1021", "565/9999", DUE)
    assert fake.enrollments == {}


# --- withdraw ----------------------------------------------------------------------------------


def test_withdraw_concludes_the_enrollment(fake: CanvasFake) -> None:
    canvas = client(fake)
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    assert canvas.withdraw(enrolment) is True
    assert fake.student_enrollments(565, 1021)[0]["enrollment_state"] == "completed"
    assert fake.count(f"DELETE /courses/565/enrollments/{enrolment.handle}") == 1


def test_withdraw_with_another_task(fake: CanvasFake) -> None:
    canvas = client(fake, withdraw_task="delete")
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    assert canvas.withdraw(enrolment) is True
    assert fake.student_enrollments(565, 1021)[0]["enrollment_state"] == "deleted"
    with pytest.raises(ConfigurationError, match="withdraw_task"):
        client(fake, withdraw_task="erase")


def test_withdraw_of_a_gone_enrollment_is_true(fake: CanvasFake) -> None:
    assert client(fake).withdraw(Enrolment("1021", "565/8812", "4242")) is True


def test_withdraw_is_false_when_canvas_does_not_allow_it(fake: CanvasFake) -> None:
    canvas = client(fake)
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    fake.deny(r"^DELETE /api/v1/courses/\d+/enrollments/")
    assert canvas.withdraw(enrolment) is False
    assert fake.student_enrollments(565, 1021)[0]["enrollment_state"] == "active"


# --- progress ----------------------------------------------------------------------------------


def test_progress_before_and_after_completion(fake: CanvasFake) -> None:
    canvas = client(fake)
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    assert canvas.progress(enrolment) == Progress(Completion.OPEN, detail="not submitted")
    fake.submit(1021, 8812)
    submitted = canvas.progress(enrolment)
    assert submitted.completion is Completion.COMPLETED
    assert submitted.at is not None
    assert submitted.detail == "submitted, not graded yet"
    fake.grade(1021, 8812, "complete", 10.0)
    graded = canvas.progress(enrolment)
    assert graded.completion is Completion.PASSED
    assert graded.detail == "graded complete"


def test_progress_with_a_pass_ratio_reads_the_points(fake: CanvasFake) -> None:
    canvas = client(fake, pass_ratio=0.7)
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    fake.submit(1021, 8812)
    fake.grade(1021, 8812, "6", 6.0)
    failed = canvas.progress(enrolment)
    assert (failed.completion, failed.detail) == (Completion.FAILED, "score 6 of 10")
    fake.grade(1021, 8812, "8", 8.0)
    assert canvas.progress(enrolment).completion is Completion.PASSED


def test_progress_of_an_excused_learner(fake: CanvasFake) -> None:
    canvas = client(fake)
    enrolment = canvas.enrol("1021", "565/8812", DUE)
    fake.excuse(1021, 8812)
    assert canvas.progress(enrolment).completion is Completion.COMPLETED


def test_progress_of_someone_never_enrolled_is_a_payload_error(fake: CanvasFake) -> None:
    with pytest.raises(PayloadError, match="not found"):
        client(fake).progress(Enrolment("1021", "565/8812", "1"))


NOW = "2026-12-01T10:00:00Z"
AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("submission", "ratio", "expected"),
    [
        ({"workflow_state": "unsubmitted"}, None, (Completion.OPEN, None)),
        ({"workflow_state": "unsubmitted", "excused": True}, None, (Completion.COMPLETED, None)),
        ({"workflow_state": "submitted", "submitted_at": NOW}, None, (Completion.COMPLETED, AT)),
        (
            {"workflow_state": "pending_review", "submitted_at": NOW},
            None,
            (Completion.COMPLETED, AT),
        ),
        (
            {"workflow_state": "submitted", "submitted_at": NOW, "redo_request": True},
            None,
            (Completion.OPEN, None),
        ),
        (
            {"workflow_state": "graded", "grade": "complete", "graded_at": NOW},
            None,
            (Completion.PASSED, AT),
        ),
        (
            {"workflow_state": "graded", "grade": "incomplete", "graded_at": NOW},
            None,
            (Completion.FAILED, AT),
        ),
        (
            {"workflow_state": "graded", "grade": "B", "score": 8, "graded_at": NOW},
            None,
            (Completion.COMPLETED, AT),
        ),
        (
            {"workflow_state": "graded", "grade": "B", "score": 8, "graded_at": NOW},
            0.8,
            (Completion.PASSED, AT),
        ),
        (
            {"workflow_state": "graded", "grade": "C", "score": 7.9, "graded_at": NOW},
            0.8,
            (Completion.FAILED, AT),
        ),
        ({"workflow_state": "graded"}, None, (Completion.OPEN, None)),
        ({}, None, (Completion.OPEN, None)),
    ],
)
def test_the_submission_mapping(
    submission: dict[str, Any], ratio: float | None, expected: tuple[Completion, datetime | None]
) -> None:
    progress = submission_progress(submission, 10.0, ratio)
    assert (progress.completion, progress.at) == expected


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            InvalidAccessToken({"errors": [{"message": "Invalid access token."}]}),
            AuthenticationError,
        ),
        (Unauthorized({"errors": [{"message": "user not authorized"}]}), AuthenticationError),
        (Forbidden("forbidden"), AuthenticationError),
        (ResourceDoesNotExist("Not Found"), PayloadError),
        (BadRequest('{"errors": "bad"}'), PayloadError),
        (Conflict("conflict"), PayloadError),
        (UnprocessableEntity("unprocessable"), PayloadError),
        (RateLimitExceeded("Rate Limit Exceeded. X-Rate-Limit-Remaining: 0"), Retryable),
        (Forbidden("403 Forbidden (Rate Limit Exceeded)"), Retryable),
        (CanvasException("Encountered an error: status code 503"), Retryable),
        (CanvasException("Encountered an error: status code 501"), PayloadError),
    ],
)
def test_every_canvasapi_exception_is_translated(exc: Exception, expected: type) -> None:
    translated = translate(exc, "Canvas thing", None)
    assert isinstance(translated, expected)
    assert str(translated).startswith("Canvas thing: ")


def test_a_wrong_token_is_an_authentication_error(fake: CanvasFake) -> None:
    with pytest.raises(AuthenticationError, match="refused the access token"):
        client(fake, token="wrong-token").find_user("dana.ops@example.com")


def test_a_permission_the_token_lacks_is_an_authentication_error(fake: CanvasFake) -> None:
    fake.deny(r"/users$")
    with pytest.raises(AuthenticationError, match="may not do this"):
        client(fake).find_user("dana.ops@example.com")


def test_429_with_retry_after_is_retried_then_succeeds(fake: CanvasFake) -> None:
    waits: list[float] = []
    fake.fail(429, times=2, retry_after="2")
    assert client(fake, waits).find_user("dana.ops@example.com") == "1021"
    assert waits == [2.0, 2.0]
    assert fake.count("GET /accounts/self/users") == 3


def test_canvas_throttling_403_is_retried() -> None:
    class Throttling(CanvasFake):
        left = 1

        def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
            if self.left:
                self.left -= 1
                return 403, "403 Forbidden (Rate Limit Exceeded)", {"Retry-After": "1"}
            return super().answer(method, target, headers, body)

    waits: list[float] = []
    throttling = Throttling(token=TOKEN)
    throttling.add_user("dana.ops@example.com")
    with serve(throttling.answer) as url:
        throttling.url = url
        assert client(throttling, waits).find_user("dana.ops@example.com") == "1021"
    assert waits == [1.0]


def test_5xx_is_retried_then_becomes_a_transient_error(fake: CanvasFake) -> None:
    waits: list[float] = []
    fake.fail(502, times=5)
    with pytest.raises(TransientError, match="502"):
        client(fake, waits).enrol("1021", "565/8812", DUE)
    assert len(waits) == 2


def test_a_long_retry_after_is_handed_back_not_slept(fake: CanvasFake) -> None:
    waits: list[float] = []
    fake.fail(429, retry_after="600")
    with pytest.raises(TransientError) as caught:
        client(fake, waits).find_user("dana.ops@example.com")
    assert caught.value.retry_after == 600.0
    assert waits == []


class FlakyOverrides(CanvasFake):
    """Answers the next override creates with the scripted statuses, creating nothing."""

    statuses: list[int]

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        if method == "POST" and target.endswith("/overrides") and self.statuses:
            with self.lock:
                self.requests.append(f"{method} {target}")
            return self.statuses.pop(0), {"errors": [{"message": "scripted"}]}, {}
        return super().answer(method, target, headers, body)


def test_an_override_create_is_repeated_only_after_a_throttle(install: Install) -> None:
    fake = install(FlakyOverrides(token=TOKEN))
    fake.add_user("dana.ops@example.com")
    fake.add_assignment()
    canvas = client(fake)
    canvas.enrol("1021", "565/8812", None)
    fake.statuses = [500]
    with pytest.raises(TransientError, match="500"):
        canvas.enrol("1021", "565/8812", DUE)
    assert fake.count("POST /courses/565/assignments/8812/overrides") == 1  # not repeated
    fake.statuses = [429]
    canvas.enrol("1021", "565/8812", DUE)
    assert fake.count("POST /courses/565/assignments/8812/overrides") == 3
    assert len(fake.overrides_for(8812)) == 1


def test_a_malformed_base_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="base URL"):
        CanvasClient("https://canvas.example.com/api/v1", TOKEN)


# --- secrets -----------------------------------------------------------------------------------


def test_the_token_never_appears_in_reprs_or_errors(fake: CanvasFake) -> None:
    canvas = client(fake)
    assert TOKEN not in repr(canvas)
    assert "token=***" in repr(canvas)
    assert TOKEN not in repr(CanvasClient("https://canvas.example.com", SecretStr(TOKEN)))
    failures: list[BaseException] = []
    for call in (
        lambda: client(fake, token=TOKEN + "x").find_user("dana.ops@example.com"),
        lambda: canvas.enrol("1021", "565/9999", DUE),
        lambda: canvas.progress(Enrolment("1021", "565/8812", "1")),
    ):
        with pytest.raises(CairnError) as caught:
            call()
        failures.append(caught.value)
    fake.fail(503, times=3)
    with pytest.raises(TransientError) as transient:
        canvas.find_user("dana.ops@example.com")
    failures.append(transient.value)
    for failure in failures:
        text = "".join(traceback.format_exception(failure))
        assert TOKEN not in text


def test_a_token_in_an_error_text_is_masked() -> None:
    translated = translate(BadRequest(f"echo {TOKEN}"), "Canvas thing", None, TOKEN)
    assert TOKEN not in str(translated)
    assert "echo ***" in str(translated)


def test_parse_module() -> None:
    assert parse_module("565/8812") == (565, 8812)
    with pytest.raises(PayloadError):
        parse_module("565/8812/1")


def test_the_token_never_appears_in_logs(
    fake: CanvasFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canvas = client(fake)
    fake.fail(429, retry_after="1")
    enrolment = canvas.enrol(canvas.find_user("dana.ops@example.com") or "", "565/8812", DUE)
    canvas.progress(enrolment)
    canvas.withdraw(enrolment)
    assert "canvasapi.requester" in {r.name for r in caplog.records}
    assert "cairn.canvas" in {r.name for r in caplog.records}  # the retry was logged
    assert TOKEN not in caplog.text
