"""A contract fake of the Canvas REST API subset `canvasapi` calls for Cairn, on 127.0.0.1.

Endpoints (under `/api/v1`, the shapes of `fixtures/*.json`): `GET accounts/:id/users`
(`search_term` over name, email and login id; `include[]=email`), `GET/POST
courses/:id/enrollments` (filters `user_id`, `type[]`, `state[]` defaulting to active and invited;
a create reuses the learner's enrollment, as Canvas does), `DELETE courses/:id/enrollments/:id`
(`task` conclude, delete, inactivate or deactivate), `GET courses/:id/assignments/:id`,
`GET/POST assignments/:id/overrides` and `PUT …/overrides/:id` (one ad-hoc override per student,
students must be enrolled), and `GET …/submissions/:user_id`. Lists are paginated with `Link`
headers (`rel="next"`, `"current"`, `"first"`, `"last"`) carrying every filter, `per_page`
capped at `max_per_page` (Canvas caps it at 100), as canvasapi follows them.

Requests need `Authorization: Bearer <token>`; a wrong one is a 401 with `WWW-Authenticate`
(canvasapi's InvalidAccessToken). `deny()` answers matching requests with Canvas's 401 for a
permission the token's user lacks; `fail()` scripts HTTP failures (429 with Retry-After, 5xx).
`submit()`, `grade()` and `excuse()` act as the learner and the instructor.
"""

import copy
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from connectors.canvas.client import CanvasClient
from connectors.fake_http import Answer, Failure, Failures, serve
from connectors.retrying import RetryPolicy

FIXTURES = Path(__file__).parent / "fixtures"
API = "/api/v1"
ROOT_ACCOUNT = 1
Pairs = list[tuple[str, str]]
Reply = tuple[int, Any, dict[str, str]]
Route = Callable[[dict[str, str], Pairs, Pairs], Reply]


def fixture(name: str) -> Any:
    """A recorded Canvas object from `fixtures/`, parsed (a fresh copy each time)."""
    return json.loads((FIXTURES / name).read_text())


def _error(name: str) -> Any:
    return fixture("errors.json")[name]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _first(pairs: Pairs, key: str) -> str | None:
    return next((v for k, v in pairs if k == key), None)


def _all(pairs: Pairs, key: str) -> list[str]:
    return [v for k, v in pairs if k == key]


class CanvasFake:
    """Canvas in miniature; `url` is set while `running()`."""

    def __init__(
        self,
        token: str = "fake-canvas-token",  # noqa: S107 (a test credential)
        *,
        max_per_page: int = 100,
    ) -> None:
        self.token = token
        self.max_per_page = max_per_page
        self.users: dict[int, dict[str, Any]] = {}
        self.courses: set[int] = set()
        self.assignments: dict[int, dict[str, Any]] = {}
        self.enrollments: dict[int, dict[str, Any]] = {}
        self.overrides: dict[int, dict[str, Any]] = {}
        self.submissions: dict[tuple[int, int], dict[str, Any]] = {}
        """(assignment id, user id) → submission."""
        self.requests: list[str] = []
        """"METHOD /path" of every request served, in order."""
        self.failures = Failures()
        self.lock = threading.RLock()
        self.url = ""
        self._ids = 100
        self._denied: list[re.Pattern[str]] = []
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []
        for method, template, route in (
            ("GET", "/accounts/{account}/users", self._users),
            ("GET", "/courses/{course}/enrollments", self._enrollments),
            ("POST", "/courses/{course}/enrollments", self._enroll),
            ("DELETE", "/courses/{course}/enrollments/{id}", self._unenroll),
            ("GET", "/courses/{course}/assignments/{id}", self._assignment),
            ("GET", "/courses/{course}/assignments/{id}/overrides", self._overrides),
            ("POST", "/courses/{course}/assignments/{id}/overrides", self._create_override),
            ("PUT", "/courses/{course}/assignments/{id}/overrides/{override}", self._edit_override),
            ("GET", "/courses/{course}/assignments/{id}/submissions/{user}", self._submission),
        ):
            pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", API + template)
            self._routes.append((method, re.compile(f"^{pattern}$"), route))

    # --- set-up and observation --------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_user(self, email: str, name: str = "Dana Ops", *, login_id: str | None = None) -> int:
        """Store a user (the fixture's shape); returns its id."""
        with self.lock:
            user = fixture("user.json")
            user_id = 1020 + len(self.users) + 1
            first, _, last = name.partition(" ")
            user.update(
                id=user_id,
                name=name,
                sortable_name=f"{last}, {first}" if last else name,
                short_name=name,
                first_name=first,
                last_name=last,
                sis_user_id=f"E{user_id}",
                login_id=login_id or email,
                email=email,
            )
            self.users[user_id] = user
            return user_id

    def add_assignment(
        self, name: str = "Connection pools under load", course_id: int = 565
    ) -> int:
        """Store an assignment (and its course); returns the assignment id."""
        with self.lock:
            assignment = fixture("assignment.json")
            assignment_id = 8812 + len(self.assignments)
            assignment.update(
                id=assignment_id,
                name=name,
                course_id=course_id,
                html_url=f"https://canvas.example.com/courses/{course_id}/assignments/{assignment_id}",
            )
            self.courses.add(course_id)
            self.assignments[assignment_id] = assignment
            return assignment_id

    def student_enrollments(self, course_id: int, user_id: int) -> list[dict[str, Any]]:
        """The user's student enrollments in the course, in any state."""
        with self.lock:
            return [
                e
                for e in self.enrollments.values()
                if e["course_id"] == course_id and e["user_id"] == user_id
            ]

    def overrides_for(self, assignment_id: int) -> list[dict[str, Any]]:
        """The assignment's overrides."""
        with self.lock:
            return [o for o in self.overrides.values() if o["assignment_id"] == assignment_id]

    def submit(self, user_id: int, assignment_id: int, body: str = "Done.") -> None:
        """The learner submits the assignment."""
        with self.lock:
            submission = self._submission_of(assignment_id, user_id)
            submission.update(
                body=body,
                submission_type="online_text_entry",
                submitted_at=_now(),
                workflow_state="submitted",
                attempt=(submission.get("attempt") or 0) + 1,
            )

    def grade(self, user_id: int, assignment_id: int, grade: str, score: float | None) -> None:
        """The instructor grades the learner's submission."""
        with self.lock:
            submission = self._submission_of(assignment_id, user_id)
            submission.update(
                grade=grade,
                entered_grade=grade,
                score=score,
                entered_score=score,
                graded_at=_now(),
                grader_id=1,
                workflow_state="graded",
                posted_at=_now(),
            )

    def excuse(self, user_id: int, assignment_id: int) -> None:
        """The instructor excuses the learner from the assignment."""
        with self.lock:
            submission = self._submission_of(assignment_id, user_id)
            submission.update(excused=True, grade=None, score=None, workflow_state="unsubmitted")

    def deny(self, match: str) -> None:
        """Answer requests matching `match` ("METHOD /path" regex) with Canvas's 401 for a
        permission the token's user lacks (no WWW-Authenticate: canvasapi's Unauthorized)."""
        with self.lock:
            self._denied.append(re.compile(match))

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` requests with `status` (Retry-After if given)."""
        self.failures.add(Failure(status, times, retry_after))

    def count(self, prefix: str) -> int:
        """Requests served whose "METHOD /path" starts with `prefix` (path under /api/v1)."""
        with self.lock:
            return sum(1 for r in self.requests if r.startswith(prefix.replace(" ", f" {API}", 1)))

    def client(self, **options: Any) -> CanvasClient:
        """A CanvasClient pointed at this fake (fast retries unless `policy` is given)."""
        options.setdefault("policy", RetryPolicy(attempts=3, base_wait=0.01, max_wait=2.0))
        return CanvasClient(self.url, options.pop("token", self.token), **options)

    @contextmanager
    def running(self) -> Iterator["CanvasFake"]:
        """Serve on an ephemeral loopback port until the block ends."""
        with serve(self.answer) as url:
            self.url = url
            yield self

    # --- the server ----------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        """One HTTP request → (status, JSON body, headers)."""
        parts = urlsplit(target)
        with self.lock:
            self.requests.append(f"{method} {parts.path}")
        failure = self.failures.next()
        if failure is not None:
            return failure.status, {"errors": [{"message": failure.message}]}, failure.headers
        if headers.get("authorization") != f"Bearer {self.token}":
            challenge = {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
            return 401, _error("invalid_access_token"), challenge
        with self.lock:
            if any(p.search(f"{method} {parts.path}") for p in self._denied):
                return 401, _error("unauthorized"), {}
            query = parse_qsl(parts.query, keep_blank_values=True)
            form = parse_qsl(body.decode(), keep_blank_values=True) if body else []
            for route_method, pattern, route in self._routes:
                match = pattern.match(parts.path)
                if route_method == method and match is not None:
                    return route(match.groupdict(), query, form)
        return 404, _error("not_found"), {}

    def _page(self, path: str, items: list[Any], query: Pairs) -> Reply:
        """One page of `items` and the Link header Canvas sends with it."""
        try:
            per_page = min(max(int(_first(query, "per_page") or 10), 1), self.max_per_page)
            page = max(int(_first(query, "page") or 1), 1)
        except ValueError:
            return 400, {"errors": [{"message": "invalid page"}]}, {}
        kept = [(k, v) for k, v in query if k not in ("page", "per_page")]
        last = max(1, -(-len(items) // per_page))

        def link(number: int, rel: str) -> str:
            params = urlencode([*kept, ("page", str(number)), ("per_page", str(per_page))])
            return f'<{self.url}{path}?{params}>; rel="{rel}"'

        links = [link(page, "current")]
        if page < last:
            links.append(link(page + 1, "next"))
        if page > 1:
            links.append(link(page - 1, "prev"))
        links += [link(1, "first"), link(last, "last")]
        chunk = items[(page - 1) * per_page : page * per_page]
        return 200, copy.deepcopy(chunk), {"Link": ",".join(links)}

    def _int(self, value: str | None) -> int | None:
        return int(value) if value is not None and value.isdigit() else None

    def _course(self, params: dict[str, str]) -> int | None:
        course = self._int(params["course"])
        return course if course in self.courses else None

    # --- users and enrollments ---------------------------------------------------------------

    def _users(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        if params["account"] not in ("self", str(ROOT_ACCOUNT)):
            return 404, _error("not_found"), {}
        term = (_first(query, "search_term") or "").casefold()
        if 0 < len(term) < 2:
            return 400, _error("search_term_too_short"), {}
        with_email = "email" in _all(query, "include[]")
        found = []
        for user in sorted(self.users.values(), key=lambda u: u["sortable_name"]):
            fields = (user["name"], user.get("email"), user.get("login_id"), str(user["id"]))
            if not term or any(term in str(f or "").casefold() for f in fields):
                shown = dict(user)
                if not with_email:
                    shown.pop("email", None)
                found.append(shown)
        return self._page(f"{API}/accounts/{params['account']}/users", found, query)

    def _enrollments(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        course = self._course(params)
        if course is None:
            return 404, _error("not_found"), {}
        user = self._int(_first(query, "user_id"))
        types = set(_all(query, "type[]"))
        states = set(_all(query, "state[]")) or {"active", "invited"}
        found = [
            e
            for e in sorted(self.enrollments.values(), key=lambda e: e["id"])
            if e["course_id"] == course
            and (user is None or e["user_id"] == user)
            and (not types or e["type"] in types)
            and e["enrollment_state"] in states
        ]
        return self._page(f"{API}/courses/{course}/enrollments", found, query)

    def _enroll(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        course = self._course(params)
        user = self._int(_first(form, "enrollment[user_id]"))
        if course is None:
            return 404, _error("not_found"), {}
        if user not in self.users:
            return 404, _error("not_found"), {}
        kind = _first(form, "enrollment[type]") or "StudentEnrollment"
        state = _first(form, "enrollment[enrollment_state]") or "invited"
        for enrollment in self.enrollments.values():
            same = (enrollment["course_id"], enrollment["user_id"], enrollment["type"])
            if same == (course, user, kind):
                enrollment.update(enrollment_state=state, updated_at=_now())
                return 200, copy.deepcopy(enrollment), {}
        enrollment = fixture("enrollment.json")
        member = self.users[user]
        enrollment.update(
            id=self._next_id() + 3200,
            user_id=user,
            course_id=course,
            type=kind,
            role=kind,
            enrollment_state=state,
            created_at=_now(),
            updated_at=_now(),
            sis_user_id=member["sis_user_id"],
            html_url=f"https://canvas.example.com/courses/{course}/users/{user}",
        )
        enrollment["user"].update(
            id=user,
            name=member["name"],
            sortable_name=member["sortable_name"],
            short_name=member["short_name"],
            sis_user_id=member["sis_user_id"],
            login_id=member["login_id"],
        )
        self.enrollments[enrollment["id"]] = enrollment
        return 200, copy.deepcopy(enrollment), {}

    def _unenroll(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        enrollment = self.enrollments.get(self._int(params["id"]) or 0)
        if enrollment is None or str(enrollment["course_id"]) != params["course"]:
            return 404, _error("not_found"), {}
        task = _first(form, "task") or _first(query, "task") or "conclude"
        states = {"conclude": "completed", "delete": "deleted"}
        if task not in ("conclude", "delete", "inactivate", "deactivate"):
            return 400, {"errors": [{"message": f"{task} is not a valid task"}]}, {}
        enrollment.update(enrollment_state=states.get(task, "inactive"), updated_at=_now())
        return 200, copy.deepcopy(enrollment), {}

    def _is_student(self, course: int, user: int) -> bool:
        return any(
            e["course_id"] == course
            and e["user_id"] == user
            and e["type"] == "StudentEnrollment"
            and e["enrollment_state"] in ("active", "invited", "creation_pending")
            for e in self.enrollments.values()
        )

    # --- assignments, overrides, submissions -------------------------------------------------

    def _assignment_of(self, params: dict[str, str]) -> dict[str, Any] | None:
        assignment = self.assignments.get(self._int(params["id"]) or 0)
        if assignment is None or str(assignment["course_id"]) != params["course"]:
            return None
        return assignment

    def _assignment(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        assignment = self._assignment_of(params)
        if assignment is None:
            return 404, _error("not_found"), {}
        return 200, copy.deepcopy(assignment), {}

    def _overrides(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        assignment = self._assignment_of(params)
        if assignment is None:
            return 404, _error("not_found"), {}
        found = sorted(self.overrides_for(assignment["id"]), key=lambda o: o["id"])
        path = f"{API}/courses/{params['course']}/assignments/{params['id']}/overrides"
        return self._page(path, found, query)

    def _students(self, assignment: dict[str, Any], form: Pairs, keep: int | None) -> Any:
        """The override's students, or an error reply (not enrolled, or already overridden)."""
        students = [int(s) for s in _all(form, "assignment_override[student_ids][]") if s.isdigit()]
        for student in students:
            if not self._is_student(assignment["course_id"], student):
                return 400, _error("not_a_student"), {}
            for other in self.overrides_for(assignment["id"]):
                if other["id"] != keep and student in other["student_ids"]:
                    return 400, _error("override_taken"), {}
        return students

    def _create_override(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        assignment = self._assignment_of(params)
        if assignment is None:
            return 404, _error("not_found"), {}
        students = self._students(assignment, form, keep=None)
        if isinstance(students, tuple):
            return students
        if not students:
            return 400, {"errors": {"title": [{"message": "blank"}]}}, {}
        override = fixture("assignment_override.json")
        due = _first(form, "assignment_override[due_at]")
        override.update(
            id=self._next_id() + 400,
            assignment_id=assignment["id"],
            title=_first(form, "assignment_override[title]")
            or f"{len(students)} student" + ("s" if len(students) > 1 else ""),
            student_ids=students,
            due_at=due,
            all_day_date=due[:10] if due else None,
        )
        self.overrides[override["id"]] = override
        assignment["has_overrides"] = True
        return 201, copy.deepcopy(override), {}

    def _edit_override(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        assignment = self._assignment_of(params)
        override = self.overrides.get(self._int(params["override"]) or 0)
        if assignment is None or override is None or override["assignment_id"] != assignment["id"]:
            return 404, _error("not_found"), {}
        students = self._students(assignment, form, keep=override["id"])
        if isinstance(students, tuple):
            return students
        if students:
            override["student_ids"] = students
        # Canvas drops an overridden date that an update leaves out.
        due = _first(form, "assignment_override[due_at]")
        override.update(due_at=due, all_day_date=due[:10] if due else None)
        return 200, copy.deepcopy(override), {}

    def _submission_of(self, assignment_id: int, user_id: int) -> dict[str, Any]:
        key = (assignment_id, user_id)
        if key not in self.submissions:
            submission = fixture("submission.json")
            assignment = self.assignments[assignment_id]
            submission.update(
                id=self._next_id() + 99000,
                assignment_id=assignment_id,
                user_id=user_id,
                preview_url=(
                    f"https://canvas.example.com/courses/{assignment['course_id']}/assignments/"
                    f"{assignment_id}/submissions/{user_id}?preview=1&version=0"
                ),
            )
            self.submissions[key] = submission
        return self.submissions[key]

    def _submission(self, params: dict[str, str], query: Pairs, form: Pairs) -> Reply:
        assignment = self._assignment_of(params)
        user = self._int(params["user"])
        enrolled = user is not None and any(
            e["course_id"] == (assignment or {}).get("course_id") and e["user_id"] == user
            for e in self.enrollments.values()
        )
        if assignment is None or user is None or not enrolled:
            return 404, _error("not_found"), {}
        return 200, copy.deepcopy(self._submission_of(assignment["id"], user)), {}
