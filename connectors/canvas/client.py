"""Canvas through the real `canvasapi` client as an `LmsClient`: find, enrol, withdraw, progress.

A module is `"<course id>/<assignment id>"`. Enrolling checks the assignment exists, lists the
learner's student enrollments in the course and creates one only when none is active, invited
or pending; a due date becomes a per-learner assignment override, reusing the learner's existing
override (its due date updated when it is Cairn's single-learner one). A repeat writes nothing.

canvasapi raises its own exceptions and has no retry loop of its own; `translate` maps them
once into Cairn's errors and `connectors.retrying.run` retries 429s (honouring Retry-After, read
from the last response), Canvas's own throttling (403 "Rate Limit Exceeded"), 5xx and network
failures. Creating an override is repeated in-call only after a throttle (Canvas did nothing);
after a 5xx it may exist already, so the pipeline's retry re-reads the overrides first.

canvasapi keeps its HTTP session private; `_Connection` reaches it once to bound every request
with a timeout and to remember the last response, and builds API objects for known ids without
fetching them (the account `self`, a course, an assignment, an enrollment).

Progress is the learner's submission for the assignment:

| submission | Completion |
|---|---|
| `excused` | COMPLETED (Canvas counts an excused item as done), detail "excused" |
| `redo_request` (the instructor asked for another attempt) | OPEN |
| `graded`, pass/fail grade `complete` / `incomplete` | PASSED / FAILED |
| `graded` with a score (`pass_ratio` set) | PASSED if score/points ≥ pass_ratio, else FAILED |
| `graded` otherwise | COMPLETED |
| `submitted`, `pending_review` | COMPLETED (at `submitted_at`) |
| `unsubmitted` | OPEN |
"""

import logging
import re
import threading
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from canvasapi import Canvas
from canvasapi.account import Account
from canvasapi.assignment import Assignment
from canvasapi.course import Course
from canvasapi.enrollment import Enrollment
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
from requests.adapters import HTTPAdapter

from connectors.lms import Completion, Enrolment, Progress
from connectors.retrying import RETRYABLE, Retryable, RetryPolicy, parse_retry_after, run
from core.errors import AuthenticationError, CairnError, ConfigurationError, PayloadError

T = TypeVar("T")
log = logging.getLogger("cairn.canvas")

STUDENT = "StudentEnrollment"
OPEN_STATES = ("active", "invited", "creation_pending")
"""Enrollment states that count as enrolled; concluded, inactive or deleted ones do not."""
WITHDRAW_TASKS = ("conclude", "delete", "inactivate", "deactivate")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MESSAGE_LIMIT = 300


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: canvasapi sets none, so a stalled Canvas would hang."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, *args, **kwargs)


class _Connection:
    """One thread's `Canvas` object, its requester, and the last response it received."""

    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        with warnings.catch_warnings():
            if urlsplit(base_url).hostname in _LOOPBACK:  # the contract fake speaks plain HTTP
                warnings.simplefilter("ignore", UserWarning)
            self.canvas = Canvas(base_url, token)
        self.requester: Any = self.canvas._Canvas__requester
        session: requests.Session = self.requester._session
        adapter = _TimeoutAdapter(timeout)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.hooks["response"].append(self._remember)
        self.last: requests.Response | None = None

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last = response

    def object(self, kind: Callable[[Any, dict[str, Any]], T], **attributes: Any) -> T:
        """A canvasapi object for a known id, without fetching it."""
        return kind(self.requester, attributes)


def _status(exc: Exception, last: requests.Response | None) -> int | None:
    if last is not None:
        return last.status_code
    found = re.search(r"status code (\d{3})", str(exc))
    return int(found.group(1)) if found else None


def _throttled(exc: Exception) -> bool:
    # Canvas throttles with 403 "Rate Limit Exceeded"; canvasapi raises RateLimitExceeded
    # only for a 429.
    return isinstance(exc, RateLimitExceeded) or (
        isinstance(exc, Forbidden) and "rate limit exceeded" in str(exc).lower()
    )


def translate(
    exc: Exception, what: str, last: requests.Response | None, secret: str = ""
) -> CairnError | Retryable:
    """A canvasapi or requests failure as a Cairn error, or Retryable when worth another try."""
    status = _status(exc, last)
    headers = last.headers if last is not None else {}
    asked = parse_retry_after(headers.get("Retry-After"))
    said = str(exc)[:_MESSAGE_LIMIT]
    if secret:
        said = said.replace(secret, "***")
    if isinstance(exc, requests.exceptions.JSONDecodeError):  # a requests error, not a network one
        if status in (401, 403):
            return AuthenticationError(f"{what}: Canvas refused the access token ({status})")
        if status in RETRYABLE:
            return Retryable(f"{what}: Canvas answered {status}", asked, refused=status == 429)
        return PayloadError(f"{what}: the answer is not JSON")
    if isinstance(exc, requests.RequestException):
        return Retryable(f"{what}: {type(exc).__name__}")
    if _throttled(exc):
        return Retryable(f"{what}: Canvas is rate limiting ({status})", asked, refused=True)
    if isinstance(exc, InvalidAccessToken):
        return AuthenticationError(f"{what}: Canvas refused the access token (401)")
    if isinstance(exc, Unauthorized | Forbidden):
        return AuthenticationError(f"{what}: the token's user may not do this ({status})")
    if isinstance(exc, ResourceDoesNotExist):
        return PayloadError(f"{what}: not found in Canvas (or not visible to the token's user)")
    if isinstance(exc, BadRequest | Conflict | UnprocessableEntity):
        return PayloadError(f"{what}: Canvas refused it ({status}: {said})")
    if status is not None and status in RETRYABLE:
        return Retryable(f"{what}: Canvas answered {status}", asked, refused=status == 429)
    return PayloadError(f"{what}: Canvas answered {status or said}")


def _int_id(value: str, what: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]{0,18}", value.strip()):
        raise PayloadError(f"Canvas {what} must be a positive integer, not {value!r}")
    return int(value)


def parse_module(module: str) -> tuple[int, int]:
    """`"<course id>/<assignment id>"` → (course id, assignment id)."""
    course, slash, assignment = module.partition("/")
    if not slash:
        raise PayloadError(f"a Canvas module is '<course id>/<assignment id>', not {module!r}")
    return _int_id(course, "course id"), _int_id(assignment, "assignment id")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp from Canvas, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def submission_progress(
    submission: dict[str, Any], points_possible: float | None, pass_ratio: float | None
) -> Progress:
    """The module docstring's table: one submission as a Progress."""
    state = submission.get("workflow_state")
    submitted = parse_time(submission.get("submitted_at"))
    graded = parse_time(submission.get("graded_at"))
    grade = str(submission.get("grade") or "").strip()
    score = _number(submission.get("score"))
    if submission.get("excused") is True:
        return Progress(Completion.COMPLETED, at=graded or submitted, detail="excused")
    if submission.get("redo_request") is True:
        return Progress(Completion.OPEN, detail="the instructor asked for another attempt")
    if state == "graded":
        if grade.lower() in ("complete", "pass"):
            return Progress(Completion.PASSED, at=graded, detail=f"graded {grade}")
        if grade.lower() in ("incomplete", "fail"):
            return Progress(Completion.FAILED, at=graded, detail=f"graded {grade}")
        if pass_ratio is not None and score is not None and points_possible:
            passed = score / points_possible >= pass_ratio
            detail = f"score {score:g} of {points_possible:g}"
            return Progress(Completion.PASSED if passed else Completion.FAILED, graded, detail)
        if submitted or grade or score is not None:
            return Progress(Completion.COMPLETED, at=graded or submitted, detail=f"graded {grade}")
        return Progress(Completion.OPEN, detail="graded without a submission or grade")
    if state in ("submitted", "pending_review"):
        detail = "submitted, not graded yet" if state == "submitted" else "pending review"
        return Progress(Completion.COMPLETED, at=submitted, detail=detail)
    return Progress(Completion.OPEN, detail="not submitted")


class CanvasClient:
    """One Canvas instance reached with an access token; every failure is a Cairn error."""

    name = "canvas"

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        account_id: str = "self",
        pass_ratio: float | None = None,
        withdraw_task: str = "conclude",
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        if withdraw_task not in WITHDRAW_TASKS:
            raise ConfigurationError(f"Canvas withdraw_task must be one of {WITHDRAW_TASKS}")
        self.base_url = base_url.rstrip("/")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.account_id = account_id
        self.pass_ratio = pass_ratio
        self.withdraw_task = withdraw_task
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self._local = threading.local()
        self._connection()  # a malformed base URL fails here, not on the first call

    def __repr__(self) -> str:
        return (
            f"CanvasClient(base_url={self.base_url!r}, account_id={self.account_id!r}, token=***)"
        )

    def _connection(self) -> _Connection:
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = _Connection(
                    self.base_url, self._token.get_secret_value(), self.timeout
                )
            except ValueError as exc:
                raise ConfigurationError(f"Canvas base URL {self.base_url!r}: {exc}") from exc
            self._local.connection = connection
        return connection

    def run(self, what: str, call: Callable[[_Connection], T], *, idempotent: bool = True) -> T:
        """`call(connection)` with retries; failures as Cairn errors. A non-idempotent call is
        repeated only after a throttle, which Canvas answers without acting."""
        what = f"Canvas {what}"

        def attempt() -> T:
            connection = self._connection()
            connection.last = None
            try:
                return call(connection)
            except (CanvasException, requests.RequestException) as exc:
                secret = self._token.get_secret_value()
                translated = translate(exc, what, connection.last, secret)
                if isinstance(translated, Retryable):
                    log.info("%s; retrying", translated)
                raise translated from exc

        return run(attempt, self.policy, retry_if=lambda exc: idempotent or exc.refused)

    # --- the LmsClient protocol ------------------------------------------------------------

    def find_user(self, email: str) -> str | None:
        """Search the account's users (`GET /accounts/:id/users?search_term=`, every page) and
        keep the exact match on email, else on login id; two matches are a PayloadError."""
        wanted = email.strip().casefold()

        def call(connection: _Connection) -> list[tuple[str, str, str]]:
            account = connection.object(Account, id=self.account_id)
            users = account.get_users(search_term=email.strip(), include=["email"])
            return [
                (
                    str(user.id),
                    str(getattr(user, "email", None) or "").casefold(),
                    str(getattr(user, "login_id", None) or "").casefold(),
                )
                for user in users
            ]

        found = self.run("user search", call)
        for field in (1, 2):
            ids = {row[0] for row in found if row[field] == wanted}
            if len(ids) > 1:
                raise PayloadError(f"Canvas has {len(ids)} users with this email address")
            if ids:
                return ids.pop()
        return None

    def enrol(self, user_id: str, module: str, due_at: datetime | None) -> Enrolment:
        """Enrol as a student unless enrolled, then give the learner's override the due date."""
        course_id, assignment_id = parse_module(module)
        user = _int_id(user_id, "user id")

        def assignment_of(connection: _Connection) -> Any:
            course = connection.object(Course, id=course_id)
            return course.get_assignment(assignment_id)

        assignment = self.run("assignment", assignment_of)
        enrollment_id = self._enrollment(course_id, user)
        if due_at is not None:
            self._override(assignment, user, due_at)
        return Enrolment(str(user), f"{course_id}/{assignment_id}", str(enrollment_id), due_at)

    def withdraw(self, enrolment: Enrolment) -> bool:
        """Conclude the enrollment (`withdraw_task`); True also when it is already gone, False
        when the token's user may not remove it."""
        course_id, _ = parse_module(enrolment.module)
        enrollment_id = _int_id(enrolment.handle, "enrollment id")

        def call(connection: _Connection) -> bool:
            enrollment = connection.object(Enrollment, id=enrollment_id, course_id=course_id)
            try:
                enrollment.deactivate(self.withdraw_task)
            except ResourceDoesNotExist:
                return True
            except (Unauthorized, Forbidden) as exc:
                if _throttled(exc):
                    raise
                return False
            return True

        return self.run("withdraw enrollment", call)

    def progress(self, enrolment: Enrolment) -> Progress:
        """The learner's submission for the assignment, mapped as the module docstring says."""
        course_id, assignment_id = parse_module(enrolment.module)
        user = _int_id(enrolment.user_id, "user id")

        def submission_of(connection: _Connection) -> dict[str, Any]:
            assignment = connection.object(Assignment, id=assignment_id, course_id=course_id)
            submission = assignment.get_submission(user)
            return {k: v for k, v in vars(submission).items() if not k.startswith("_")}

        submission = self.run("submission", submission_of)
        points = None
        numeric = _number(submission.get("score")) is not None
        if self.pass_ratio is not None and submission.get("workflow_state") == "graded" and numeric:

            def points_of(connection: _Connection) -> float | None:
                course = connection.object(Course, id=course_id)
                return _number(
                    getattr(course.get_assignment(assignment_id), "points_possible", None)
                )

            points = self.run("assignment", points_of)
        return submission_progress(submission, points, self.pass_ratio)

    # --- steps of enrol --------------------------------------------------------------------

    def _enrollment(self, course_id: int, user: int) -> int:
        def existing(connection: _Connection) -> int | None:
            course = connection.object(Course, id=course_id)
            found = course.get_enrollments(user_id=user, type=[STUDENT], state=list(OPEN_STATES))
            for enrollment in found:
                if (
                    getattr(enrollment, "type", STUDENT) == STUDENT
                    and getattr(enrollment, "enrollment_state", None) in OPEN_STATES
                    and str(getattr(enrollment, "user_id", user)) == str(user)
                ):
                    return int(enrollment.id)
            return None

        found = self.run("enrollments", existing)
        if found is not None:
            return found

        def create(connection: _Connection) -> int:
            course = connection.object(Course, id=course_id)
            enrollment = course.enroll_user(
                user, enrollment={"type": STUDENT, "enrollment_state": "active"}
            )
            return int(enrollment.id)

        # Canvas reuses a learner's enrollment in the section, so repeating this is harmless.
        return self.run("enrol", create)

    def _override(self, assignment: Any, user: int, due_at: datetime) -> None:
        due = _iso(due_at)

        def existing(connection: _Connection) -> Any:
            for override in assignment.get_overrides():
                if user in [int(s) for s in getattr(override, "student_ids", None) or []]:
                    return override
            return None

        override = self.run("assignment overrides", existing)
        if override is None:

            def create(connection: _Connection) -> None:
                assignment.create_override(
                    assignment_override={"student_ids": [user], "due_at": due}
                )

            self.run("create assignment override", create, idempotent=False)
            return
        students = getattr(override, "student_ids", None) or []
        current = parse_time(getattr(override, "due_at", None))
        if len(students) == 1 and (current is None or _iso(current) != due):

            def update(connection: _Connection) -> None:
                override.edit(assignment_override={"student_ids": [user], "due_at": due})

            self.run("update assignment override", update)
