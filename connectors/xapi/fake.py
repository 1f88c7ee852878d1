"""A contract fake of an xAPI LRS's statements resource, for the tests and for `cairn demo` when
Ralph is not installed: `GET`, `POST` and `PUT /xAPI/statements` with Basic auth, the version
header, `since`/`until`/`verb`/`activity`/`limit`/`ascending` and `more` paging.

It follows the spec where Ralph does not: `since` is exclusive and applies to `stored`, results
come newest first unless `ascending=true`, and the filters work. `clock` sets `stored`, so a test
can make several statements share one instant.
"""

import base64
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from connectors.fake_http import FakeServer, Reply, ServedFake

PATH = "/xAPI/statements"
MAX_LIMIT = 100
QUERY_PARAMETERS = frozenset(
    {
        "statementId",
        "agent",
        "verb",
        "activity",
        "registration",
        "related_activities",
        "related_agents",
        "since",
        "until",
        "limit",
        "format",
        "attachments",
        "ascending",
        "page",
    }
)


def basic_auth(username: str, password: str) -> str:
    """The `Authorization` header value for HTTP Basic auth."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


class _XapiServer(FakeServer):
    """Refuses an authenticated request without `X-Experience-API-Version: 1.0.x` (400)."""

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        version = headers.get("x-experience-api-version", "")
        if headers.get("authorization") == self.auth and not version.startswith("1.0."):
            return 400, {"error": "X-Experience-API-Version 1.0.x is required"}
        return super().dispatch(method, target, headers, body)


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class FakeLrs(ServedFake):
    """Statements in memory, in the order stored; `server.fail(...)` scripts errors."""

    def __init__(
        self,
        username: str = "cairn",
        password: str = "cairn-lrs-fake",  # noqa: S107 (the fake's own default)
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_limit: int = MAX_LIMIT,
    ) -> None:
        self.statements: list[dict[str, Any]] = []
        self._sent: dict[str, dict[str, Any]] = {}
        self.clock = clock
        self.max_limit = max_limit
        self._lock = threading.Lock()
        self.server = _XapiServer(auth=basic_auth(username, password))
        self.server.route("GET", PATH, self._get)
        self.server.route("POST", PATH, self._post)
        self.server.route("PUT", PATH, self._put)

    def add(self, statement: Mapping[str, Any]) -> str:
        """Store a statement as the LRS would (id, `stored`, `timestamp`, `authority`); its id.
        Raises ValueError for one it would refuse (400) or a different one with a known id."""
        with self._lock:
            return self._store(statement)

    def _store(self, statement: Mapping[str, Any]) -> str:
        problem = _problem(statement)
        if problem is not None:
            raise ValueError(problem)
        record = dict(statement)
        record.setdefault("id", str(uuid.uuid4()))
        sent = self._sent.get(record["id"])
        if sent is not None:
            if sent != record:
                raise ValueError(f"statement {record['id']} exists with other content")
            return str(record["id"])
        self._sent[record["id"]] = dict(record)
        stored = self.clock().astimezone(UTC).isoformat()
        record["stored"] = stored
        record.setdefault("timestamp", stored)
        record["authority"] = {"objectType": "Agent", "mbox": "mailto:lrs-fake@example.com"}
        self.statements.append(record)
        return str(record["id"])

    def _post(self, params: dict[str, str], query: Any, body: Any) -> Reply:
        batch = body if isinstance(body, list) else [body]
        with self._lock:
            for statement in batch:  # all or nothing, as the spec asks
                problem = _problem(statement)
                if problem is not None:
                    return 400, {"error": problem}
                known = self._sent.get(statement.get("id", ""))
                if known is not None and known != statement:
                    return 409, {"error": f"statement {statement['id']} exists with other content"}
            try:
                return 200, [self._store(statement) for statement in batch]
            except ValueError as exc:  # one id twice in the batch, with different content
                return 409, {"error": str(exc)}

    def _put(self, params: dict[str, str], query: dict[str, list[str]], body: Any) -> Reply:
        statement_id = query.get("statementId", [""])[0]
        if not statement_id or not isinstance(body, dict):
            return 400, {"error": "PUT needs ?statementId= and one statement"}
        if body.setdefault("id", statement_id) != statement_id:
            return 400, {"error": "the statement's id differs from statementId"}
        with self._lock:
            try:
                self._store(body)
            except ValueError as exc:
                return (409 if "exists" in str(exc) else 400), {"error": str(exc)}
        return 204, None

    def _get(self, params: dict[str, str], query: dict[str, list[str]], body: Any) -> Reply:
        unknown = set(query) - QUERY_PARAMETERS
        if unknown:
            return 400, {"error": f"unknown parameters: {sorted(unknown)}"}
        one = {k: v[0] for k, v in query.items()}
        since = _moment(one["since"]) if "since" in one else None
        until = _moment(one["until"]) if "until" in one else None
        if ("since" in one and since is None) or ("until" in one and until is None):
            return 400, {"error": "since and until are ISO 8601 timestamps with an offset"}
        try:
            limit = int(one.get("limit", "0"))
            start = int(one.get("page", "0"))
        except ValueError:
            return 400, {"error": "limit must be an integer"}
        limit = self.max_limit if limit <= 0 else min(limit, self.max_limit)
        with self._lock:
            found = [s for s in self.statements if _selected(s, one, since, until)]
        if "statementId" in one:
            return (200, found[0]) if found else (404, {"error": "no such statement"})
        if one.get("ascending") != "true":
            found.reverse()
        page = found[start : start + limit]
        more = ""
        if start + limit < len(found):
            rest = {k: v for k, v in one.items() if k != "page"}
            more = f"{PATH}?{urlencode({**rest, 'page': str(start + limit)})}"
        return 200, {"statements": page, "more": more}


def _problem(statement: Any) -> str | None:
    if not isinstance(statement, dict):
        return "a statement is a JSON object"
    if not isinstance(statement.get("id", ""), str):
        return "a statement's id is a string"
    if not isinstance(statement.get("actor"), dict):
        return "a statement needs an actor"
    if not isinstance((statement.get("verb") or {}).get("id"), str):
        return "a statement needs a verb id"
    if not isinstance((statement.get("object") or {}).get("id"), str):
        return "a statement needs an object id"
    return None


def _selected(
    statement: dict[str, Any],
    query: dict[str, str],
    since: datetime | None,
    until: datetime | None,
) -> bool:
    stored = datetime.fromisoformat(statement["stored"])
    checks = (
        "statementId" not in query or statement["id"] == query["statementId"],
        "verb" not in query or statement["verb"]["id"] == query["verb"],
        "activity" not in query or statement["object"]["id"] == query["activity"],
        since is None or stored > since,
        until is None or stored <= until,
    )
    return all(checks)
