"""A contract fake of Moodle's REST web service server, on 127.0.0.1, keeping state in memory.

It serves `POST /webservice/rest/server.php` (GET too, as Moodle does) for the functions Cairn
calls: `core_user_get_users_by_field`, `core_enrol_get_users_courses`,
`enrol_manual_enrol_users`, `enrol_manual_unenrol_users` and
`core_completion_get_course_completion_status`, with the answer shapes of the recorded fixtures
(`fixtures/*.json`, from the functions' `*_returns()` descriptions). It decodes Moodle's array
encoding (`enrolments[0][userid]`), checks in Moodle's order (token, function, service,
parameters) and reports failures the way Moodle does: HTTP 200 with an exception body
(`fixtures/exceptions.json`). `fail()` scripts HTTP failures (429 with Retry-After, 5xx) and
`fault()` scripts exception bodies; `complete()` marks a learner's course complete. Functions
that return nothing answer with an empty body where Moodle sends `null` (`fake_http.serve` has
no way to send a bare JSON null); the client accepts both.
"""

import copy
import json
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from connectors.fake_http import Answer, Failure, Failures, serve
from connectors.moodle.client import SERVER_PATH, MoodleClient
from connectors.retrying import RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures"
SERVED = (
    "core_user_get_users_by_field",
    "core_enrol_get_users_courses",
    "enrol_manual_enrol_users",
    "enrol_manual_unenrol_users",
    "core_completion_get_course_completion_status",
)
ASSIGNABLE_ROLES = {3: "editingteacher", 4: "teacher", 5: "student"}
_KEY = re.compile(r"\[([^\[\]]*)\]")


def fixture(name: str) -> Any:
    """A recorded answer from `fixtures/`, parsed (a fresh copy each time)."""
    return json.loads((FIXTURES / name).read_text())


class MoodleError(Exception):
    """Raised inside a handler; answered as Moodle's exception body for `code`."""

    def __init__(self, code: str, debuginfo: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.debuginfo = debuginfo


def exception_body(code: str, debuginfo: str | None = None) -> dict[str, Any]:
    """Moodle's HTTP-200 exception body for an errorcode (fixtures/exceptions.json)."""
    known: dict[str, dict[str, Any]] = fixture("exceptions.json")
    body = dict(known.get(code) or {"exception": "moodle_exception", "errorcode": code})
    body.setdefault("message", code)
    if debuginfo is not None:
        body["debuginfo"] = debuginfo
    return body


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Moodle's array encoding back to nested values: `a[0][b]=1` → `{"a": [{"b": "1"}]}`."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head, *_KEY.findall("[" + rest)] if rest else [head]
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise MoodleError("invalidparameter", f"{key} mixes a value and a structure")
        node[path[-1]] = value

    def listify(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        items = {k: listify(v) for k, v in value.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items

    result = listify(root)
    assert isinstance(result, dict)
    return result


def _int(params: dict[str, Any], name: str, where: str = "") -> int:
    """A required PARAM_INT, as Moodle's validate_parameters checks it."""
    if name not in params:
        raise MoodleError(
            "invalidparameter", f"{where}Missing required key in single structure: {name}"
        )
    value = params[name]
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
        raise MoodleError(
            "invalidparameter",
            f'{where}{name} => Invalid parameter value detected: the value is "{value}", '
            'the server was expecting "int" type',
        )
    return int(value)


def _list(params: dict[str, Any], name: str) -> list[Any]:
    value = params.get(name)
    if not isinstance(value, list):
        raise MoodleError("invalidparameter", f"Missing required key in single structure: {name}")
    return value


class MoodleFake:
    """Moodle in miniature; `url` is set while `running()`."""

    def __init__(
        self,
        token: str = "fake-moodle-token",  # noqa: S107 (a test credential)
        functions: Iterable[str] = SERVED,
    ) -> None:
        self.token = token
        self.functions = set(functions)
        """Functions in the token's service; others answer `accessexception`."""
        self.users: dict[int, dict[str, Any]] = {}
        self.courses: dict[int, dict[str, Any]] = {}
        self.enrolments: dict[tuple[int, int], dict[str, int]] = {}
        """(user id, course id) → roleid, timestart, timeend, status (0 active, 1 suspended)."""
        self.completions: dict[tuple[int, int], int] = {}
        """(user id, course id) → timecompleted."""
        self.requests: list[str] = []
        """The wsfunction of every request served, in order."""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        """(wsfunction, decoded parameters) of every request that passed the token check."""
        self.failures = Failures()
        self.lock = threading.RLock()
        self.url = ""
        self._faults: list[list[Any]] = []

    # --- set-up and observation --------------------------------------------------------------

    def add_user(self, email: str, firstname: str = "Dana", lastname: str = "Ops") -> int:
        """Store a user (the fixture's shape); returns its id."""
        with self.lock:
            user_id = max(self.users, default=6) + 1
            user = fixture("core_user_get_users_by_field.json")[0]
            user.update(
                id=user_id,
                username=email.split("@")[0].lower(),
                firstname=firstname,
                lastname=lastname,
                fullname=f"{firstname} {lastname}",
                email=email,
            )
            self.users[user_id] = user
            return user_id

    def add_course(self, shortname: str, fullname: str | None = None, *, criteria: int = 1) -> int:
        """Store a course with completion enabled and `criteria` activity criteria."""
        with self.lock:
            course_id = max(self.courses, default=41) + 1
            course = fixture("core_enrol_get_users_courses.json")[0]
            course.update(
                id=course_id,
                shortname=shortname,
                fullname=fullname or shortname,
                displayname=fullname or shortname,
                idnumber="",
            )
            course["criteria"] = criteria
            self.courses[course_id] = course
            return course_id

    def enrol(self, user_id: int, course_id: int, *, suspended: bool = False) -> None:
        """Enrol directly, as an administrator would (no request)."""
        with self.lock:
            self.enrolments[(user_id, course_id)] = {
                "roleid": 5,
                "timestart": 0,
                "timeend": 0,
                "status": 1 if suspended else 0,
            }

    def complete(self, user_id: int, course_id: int, at: datetime | None = None) -> None:
        """Mark the user's course complete (every criterion met), as a learner finishing it."""
        moment = at or datetime.now(UTC)
        with self.lock:
            self.completions[(user_id, course_id)] = int(moment.timestamp())

    def is_enrolled(self, user_id: int, course_id: int) -> bool:
        """Whether the user has an enrolment record in the course (in any state)."""
        with self.lock:
            return (user_id, course_id) in self.enrolments

    def count(self, function: str) -> int:
        """Requests served for `function`."""
        with self.lock:
            return self.requests.count(function)

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` requests with HTTP `status` (Retry-After if given)."""
        self.failures.add(Failure(status, times, retry_after))

    def fault(self, code: str, times: int = 1) -> None:
        """Answer the next `times` requests with Moodle's HTTP-200 exception body for `code`."""
        with self.lock:
            self._faults.append([code, times])

    def client(self, **options: Any) -> MoodleClient:
        """A MoodleClient pointed at this fake (fast retries unless `policy` is given)."""
        options.setdefault("policy", RetryPolicy(attempts=3, base_wait=0.01, max_wait=2.0))
        return MoodleClient(self.url, options.pop("token", self.token), **options)

    @contextmanager
    def running(self) -> Iterator["MoodleFake"]:
        """Serve on an ephemeral loopback port until the block ends."""
        with serve(self.answer) as url:
            self.url = url
            yield self

    # --- the server ----------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        """One HTTP request → (status, JSON body, headers)."""
        parts = urlsplit(target)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if method == "POST":
            pairs += parse_qsl(body.decode(), keep_blank_values=True)
        fields = dict(pairs)
        function = fields.get("wsfunction", "")
        with self.lock:
            self.requests.append(function)
        failure = self.failures.next()
        if failure is not None:
            return failure.status, {"error": failure.message}, failure.headers
        if parts.path != SERVER_PATH or method not in ("GET", "POST"):
            return 404, {"error": "Not Found"}, {}
        if fields.get("moodlewsrestformat") != "json":
            # Moodle answers in XML unless asked for JSON; a client must always ask.
            return 200, '<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE/>', {}
        return 200, self._serve(function, fields.get("wstoken", ""), pairs), {}

    def _serve(self, function: str, token: str, pairs: list[tuple[str, str]]) -> Any:
        with self.lock:
            if self._faults:
                self._faults[0][1] -= 1
                code = self._faults[0][0]
                if self._faults[0][1] <= 0:
                    self._faults.pop(0)
                return exception_body(code)
            if token != self.token:
                return exception_body("invalidtoken")
            if function not in SERVED:
                return exception_body("invalidrecord")
            if function not in self.functions:
                return exception_body("accessexception")
            reserved = {"wstoken", "wsfunction", "moodlewsrestformat"}
            try:
                params = decode((k, v) for k, v in pairs if k not in reserved)
                self.calls.append((function, params))
                return getattr(self, f"_{function}")(params)
            except MoodleError as exc:
                return exception_body(exc.code, exc.debuginfo)

    def _user(self, user_id: int) -> dict[str, Any]:
        if user_id not in self.users:
            raise MoodleError("invalidrecord")
        return self.users[user_id]

    def _course(self, course_id: int) -> dict[str, Any]:
        if course_id not in self.courses:
            raise MoodleError("invalidrecord")
        return self.courses[course_id]

    def _active(self, user_id: int, course_id: int) -> bool:
        found = self.enrolments.get((user_id, course_id))
        now = int(datetime.now(UTC).timestamp())
        return (
            found is not None
            and found["status"] == 0
            and found["timestart"] <= now
            and (found["timeend"] == 0 or found["timeend"] > now)
        )

    # --- the functions -------------------------------------------------------------------------

    def _core_user_get_users_by_field(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        field = params.get("field")
        if field not in ("id", "idnumber", "username", "email"):
            raise MoodleError("codingerror", f"The search field '{field}' is not supported")
        values = set(_list(params, "values"))
        return [
            copy.deepcopy(user)
            for user_id, user in sorted(self.users.items())
            if str(user.get(field, "")) in values
        ]

    def _core_enrol_get_users_courses(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        user_id = _int(params, "userid")
        courses = []
        for course_id, course in sorted(self.courses.items()):
            if self._active(user_id, course_id):
                shown = {k: v for k, v in copy.deepcopy(course).items() if k != "criteria"}
                shown["completed"] = (user_id, course_id) in self.completions
                shown["progress"] = 100 if shown["completed"] else 0
                courses.append(shown)
        return courses

    def _enrol_manual_enrol_users(self, params: dict[str, Any]) -> None:
        entries = _list(params, "enrolments")
        checked = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise MoodleError("invalidparameter", f"enrolments => {index} is not a structure")
            where = f"enrolments => {index} => "
            role, user, course = (_int(entry, k, where) for k in ("roleid", "userid", "courseid"))
            if course not in self.courses:
                raise MoodleError("invalidparameter", "Context does not exist")
            if role not in ASSIGNABLE_ROLES:
                raise MoodleError("wsusercannotassign")
            self._user(user)
            times = {k: _int(entry, k, where) for k in ("timestart", "timeend") if k in entry}
            suspended = "suspend" in entry and _int(entry, "suspend", where) != 0
            checked.append((user, course, role, times, suspended))
        for user, course, role, times, suspended in checked:  # all or nothing, like Moodle
            self.enrolments[(user, course)] = {
                "roleid": role,
                "timestart": times.get("timestart", 0),
                "timeend": times.get("timeend", 0),
                "status": 1 if suspended else 0,
            }

    def _enrol_manual_unenrol_users(self, params: dict[str, Any]) -> None:
        entries = _list(params, "enrolments")
        checked = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise MoodleError("invalidparameter", f"enrolments => {index} is not a structure")
            where = f"enrolments => {index} => "
            user, course = _int(entry, "userid", where), _int(entry, "courseid", where)
            self._course(course)
            if user not in self.users:
                raise MoodleError("invalidparameter", f"User id not exist: {user}")
            checked.append((user, course))
        for user, course in checked:
            self.enrolments.pop((user, course), None)

    def _core_completion_get_course_completion_status(self, params: dict[str, Any]) -> Any:
        course_id, user_id = _int(params, "courseid"), _int(params, "userid")
        course = self._course(course_id)
        self._user(user_id)
        if not course.get("enablecompletion"):
            raise MoodleError("cannotviewreport")
        if not self._active(user_id, course_id):
            raise MoodleError("usernotenroled")
        if not course.get("criteria"):
            raise MoodleError("nocriteriaset")
        done = self.completions.get((user_id, course_id))
        name = "completed" if done is not None else "open"
        answer = fixture(f"core_completion_get_course_completion_status__{name}.json")
        row = answer["completionstatus"]["completions"][0]
        if done is not None:
            row["timecompleted"] = done
        answer["completionstatus"]["completions"] = [
            copy.deepcopy(row) for _ in range(course["criteria"])
        ]
        return answer
