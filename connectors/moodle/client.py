"""Moodle Web Services (REST) as an `LmsClient`: find, enrol, withdraw, read course completion.

Every call is `POST {base}/webservice/rest/server.php` with the form fields `wstoken`,
`wsfunction`, `moodlewsrestformat=json` and Moodle's array encoding (`enrolments[0][userid]=7`).
The token travels in the form body, never in a URL that a proxy or httpx's log would record.

Moodle answers a failed call with HTTP 200 and `{"exception", "errorcode", "message"}`;
`translate` is the one place those become Cairn errors. HTTP failures (429 with Retry-After, 5xx,
timeouts) are retried by `connectors.retrying.send`. Retrying a POST is safe here: Moodle's
manual enrol and unenrol are idempotent (enrolling an enrolled user only updates its dates).

A module is a course id. Enrolling reads the learner's active courses first
(`core_enrol_get_users_courses`) and writes nothing when the course is among them, so a repeat
changes nothing. A suspended or ended enrolment is not listed there, and enrolling again
re-activates it with the new end date (Moodle updates the existing enrolment). Moodle has no
per-learner course due date; the due date becomes the enrolment's `timeend` (plus
`enrolment_ends_after_due`), or is only tracked by Cairn when that is None.
"""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from connectors.lms import Completion, Enrolment, Progress
from connectors.retrying import RetryPolicy, send
from core.errors import AuthenticationError, CairnError, PayloadError, TransientError

SERVER_PATH = "/webservice/rest/server.php"
STUDENT_ROLE_ID = 5
"""The `student` archetype's role id on a standard Moodle install."""

AUTH_CODES = frozenset(
    {
        "invalidtoken",  # unknown, expired or IP-restricted token
        "accessexception",  # function not in the token's service, or protocol not allowed
        "nopermissions",  # the token's user lacks a capability (required_capability_exception)
        "enablewsdescription",  # web services are switched off on the site
        "usernotfullysetup",
        "sitepolicynotagreed",
        "forcepasswordchangenotice",
    }
)
TRANSIENT_CODES = frozenset({"sitemaintenance"})
_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class MoodleFault:
    """A Moodle exception body: `{"exception": …, "errorcode": …, "message": …}`."""

    exception: str
    errorcode: str
    message: str


def encode(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Moodle's form encoding of nested parameters: `{"a": [{"b": 1}]}` → `a[0][b]=1`."""
    pairs: list[tuple[str, str]] = []

    def walk(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                walk(f"{key}[{name}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((key, "1" if value else "0"))
        else:
            pairs.append((key, str(value)))

    for name, value in params.items():
        walk(name, value)
    return pairs


def fault_of(data: Any) -> MoodleFault | None:
    """The exception body in a Moodle answer, if it is one."""
    if not isinstance(data, dict) or "exception" not in data:
        return None
    return MoodleFault(
        exception=str(data.get("exception") or ""),
        errorcode=str(data.get("errorcode") or "unknown"),
        message=str(data.get("message") or ""),
    )


def translate(fault: MoodleFault, what: str) -> CairnError:
    """A Moodle exception body as a Cairn error."""
    said = f"{fault.errorcode}: {fault.message[:_MESSAGE_LIMIT]}".rstrip(": ")
    if fault.errorcode in AUTH_CODES:
        return AuthenticationError(f"{what}: Moodle refused the token or its rights ({said})")
    if fault.errorcode in TRANSIENT_CODES:
        return TransientError(f"{what}: Moodle is unavailable ({said})")
    return PayloadError(f"{what}: Moodle refused the call ({said})")


def _int_id(value: str, what: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]{0,18}", value.strip()):
        raise PayloadError(f"Moodle {what} must be a positive integer, not {value!r}")
    return int(value)


def _epoch(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


class MoodleClient:
    """One Moodle site reached with a web service token; every failure is a Cairn error."""

    name = "moodle"

    def __init__(
        self,
        base_url: str,
        token: str | SecretStr,
        *,
        student_role_id: int = STUDENT_ROLE_ID,
        enrolment_ends_after_due: timedelta | None = timedelta(0),
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.student_role_id = student_role_id
        self.enrolment_ends_after_due = enrolment_ends_after_due
        self._policy = policy or RetryPolicy()
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def __repr__(self) -> str:
        return f"MoodleClient(base_url={str(self._http.base_url)!r}, token=***)"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    # --- the LmsClient protocol ------------------------------------------------------------

    def find_user(self, email: str) -> str | None:
        """`core_user_get_users_by_field` with field=email; None when no user has it.

        Moodle matches exactly (case-sensitively on PostgreSQL), so a mixed-case address is
        also asked for in lower case. Two accounts sharing the address are a PayloadError.
        """
        values = list(dict.fromkeys([email.strip(), email.strip().lower()]))
        data = self.call("core_user_get_users_by_field", {"field": "email", "values": values})
        if not isinstance(data, list):
            raise PayloadError("Moodle core_user_get_users_by_field: the answer is not a list")
        wanted = email.strip().casefold()
        found = {
            str(user["id"]).strip()
            for user in data
            if isinstance(user, dict)
            and re.fullmatch(r"\s*[1-9][0-9]*\s*", str(user.get("id")))
            and str(user.get("email") or wanted).casefold() == wanted
        }
        if len(found) > 1:
            raise PayloadError(f"Moodle has {len(found)} users with this email address")
        return found.pop() if found else None

    def enrol(self, user_id: str, module: str, due_at: datetime | None) -> Enrolment:
        """Enrol as a student (`enrol_manual_enrol_users`) unless already enrolled."""
        user = _int_id(user_id, "user id")
        course = _int_id(module, "course id")
        enrolment = Enrolment(str(user), str(course), f"{course}/{user}", due_at)
        courses = self.call("core_enrol_get_users_courses", {"userid": user})
        if not isinstance(courses, list):
            raise PayloadError("Moodle core_enrol_get_users_courses: the answer is not a list")
        if any(isinstance(c, dict) and str(c.get("id")) == str(course) for c in courses):
            return enrolment
        entry: dict[str, int] = {"roleid": self.student_role_id, "userid": user, "courseid": course}
        if due_at is not None and self.enrolment_ends_after_due is not None:
            entry["timeend"] = _epoch(due_at + self.enrolment_ends_after_due)
        self.call("enrol_manual_enrol_users", {"enrolments": [entry]})
        return enrolment

    def withdraw(self, enrolment: Enrolment) -> bool:
        """`enrol_manual_unenrol_users`; False when Moodle does not allow it for this course."""
        params = {
            "enrolments": [
                {
                    "userid": _int_id(enrolment.user_id, "user id"),
                    "courseid": _int_id(enrolment.module, "course id"),
                }
            ]
        }
        refused = {"wscannotunenrol", "wsnoinstance", "nopermissions"}
        answer = self.call("enrol_manual_unenrol_users", params, tolerate=refused)
        return not isinstance(answer, MoodleFault)

    def progress(self, enrolment: Enrolment) -> Progress:
        """`core_completion_get_course_completion_status`: completed → COMPLETED, else OPEN.

        A learner no longer enrolled (withdrawn, or past the enrolment's end) reads as OPEN
        with a detail saying so, rather than an error on every poll.
        """
        params = {
            "courseid": _int_id(enrolment.module, "course id"),
            "userid": _int_id(enrolment.user_id, "user id"),
        }
        function = "core_completion_get_course_completion_status"
        answer = self.call(function, params, tolerate={"usernotenroled"})
        if isinstance(answer, MoodleFault):
            return Progress(
                Completion.OPEN, detail="not enrolled in the course (withdrawn or ended)"
            )
        status = answer.get("completionstatus") if isinstance(answer, dict) else None
        if not isinstance(status, dict):
            raise PayloadError(f"Moodle {function}: no `completionstatus` object in the answer")
        rows = [r for r in status.get("completions") or [] if isinstance(r, dict)]
        met = sum(1 for r in rows if r.get("complete") in (True, 1, "1"))
        detail = f"{met} of {len(rows)} completion criteria met"
        if status.get("completed") not in (True, 1, "1"):
            return Progress(Completion.OPEN, detail=detail)
        times = [t for r in rows if isinstance(t := r.get("timecompleted"), int) and t > 0]
        at = datetime.fromtimestamp(max(times), UTC) if times else None
        return Progress(Completion.COMPLETED, at=at, detail=detail)

    # --- the one call path -----------------------------------------------------------------

    def call(
        self, function: str, params: Mapping[str, Any], *, tolerate: Collection[str] = ()
    ) -> Any:
        """Call one web service function; its JSON answer, or the MoodleFault it raised when its
        errorcode is in `tolerate`. Every other failure is raised as a Cairn error."""
        what = f"Moodle {function}"
        form = [
            ("wstoken", self._token.get_secret_value()),
            ("wsfunction", function),
            ("moodlewsrestformat", "json"),
            *encode(params),
        ]
        request = self._http.build_request(
            "POST",
            SERVER_PATH,
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = send(self._http, request, self._policy, what=what)
        try:
            # Functions returning nothing answer `null`; some servers send an empty body.
            data = response.json() if response.content.strip() else None
        except ValueError as exc:
            raise PayloadError(f"{what}: the answer is not JSON") from exc
        fault = fault_of(data)
        if fault is None:
            return data
        secret = self._token.get_secret_value()
        if secret and secret in fault.message:  # never echo the token into an error
            fault = MoodleFault(
                fault.exception, fault.errorcode, fault.message.replace(secret, "***")
            )
        if fault.errorcode in tolerate:
            return fault
        raise translate(fault, what)
