"""A learning record store's statements, read page by page and polled from a saved cursor.

`XapiClient` speaks the xAPI 1.0.3 statements resource (`GET`/`POST {endpoint}/statements`)
with the LRS's Basic auth and the `X-Experience-API-Version` header, through the shared retry
path: 429 and 5xx are retried honouring Retry-After (TransientError once retries run out),
401/403 are AuthenticationError, 404 NotFoundError (a wrong endpoint), anything else a
PayloadError. `more` links are followed only on the LRS's own origin, so the credentials never
travel anywhere else.

`poll` reads what is new since a `Cursor`, in `stored` order, at most `max_statements` a run.
The spec's `since` is exclusive and several statements can share one `stored` instant, so the
cursor keeps the ids already read at its instant and each poll asks from a little earlier
(`overlap`), dropping what the cursor already covers: a restart neither loses nor repeats.

LRS differences handled here: the verb and activity filters are checked again on every
statement (an LRS that ignores a filter must not credit a completion of another module), and
`server_filters=False` leaves them to the client alone, for Ralph 5.1's file-system backend,
whose filters match nothing. Ralph also applies `since` to `timestamp`, not `stored`: a
statement whose `timestamp` is older than the cursor by more than `overlap` is not returned by
it, so raise `overlap` there when learners' statements arrive late.
"""

import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, field_serializer

from connectors.base import load_json
from connectors.retrying import RetryPolicy, send
from connectors.xapi.statements import Moment, Statement, parse_statement
from core.errors import PayloadError

log = logging.getLogger(__name__)

VERSION = "1.0.3"
PAGE_LIMIT = 100
"""Statements asked for per page (Ralph serves at most 100)."""
OVERLAP = timedelta(seconds=1)


class XapiClient:
    """One LRS reached with Basic auth; every failure is a Cairn error."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr,
        *,
        endpoint: str = "/xAPI",
        server_filters: bool = True,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        """`base_url` is the LRS's root and `endpoint` its xAPI path (`/data/xAPI` on Learning
        Locker); `server_filters=False` filters by verb and activity on this side only."""
        self.server_filters = server_filters
        self._policy = policy or RetryPolicy()
        root = httpx.URL(base_url.rstrip("/") + "/")
        self._endpoint = root.join(endpoint.strip("/") + "/")
        self._http = httpx.Client(
            timeout=timeout,
            auth=httpx.BasicAuth(username, password.get_secret_value()),
            headers={"X-Experience-API-Version": VERSION, "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"XapiClient(endpoint={str(self._endpoint)!r}, password=***)"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    @property
    def statements_url(self) -> httpx.URL:
        """The statements resource."""
        return self._endpoint.join("statements")

    def pages(
        self,
        since: datetime | None = None,
        verb: str | None = None,
        activity: str | None = None,
        limit: int = PAGE_LIMIT,
    ) -> Generator[list[Statement], None, None]:
        """`GET statements` oldest first (`ascending=true`), page by page along the `more`
        links until a page comes back empty or without one. Yields the readable statements of
        each page that match `verb` and `activity`; entries it cannot read are skipped (logged).
        """
        if limit < 0:
            raise ValueError("limit must be 0 (the LRS's maximum) or more")
        params = {"ascending": "true", "limit": str(limit)}
        if since is not None:
            params["since"] = _iso(since)
        if self.server_filters and verb is not None:
            params["verb"] = verb
        if self.server_filters and activity is not None:
            params["activity"] = activity
        url = self.statements_url.copy_merge_params(params)
        followed = {str(url)}
        while True:
            data = self._get(url)
            entries = data.get("statements")
            if not isinstance(entries, list):
                raise PayloadError("xAPI statements: the answer has no `statements` list")
            page = [s for s in map(parse_statement, entries) if s is not None]
            page = [s for s in page if _matches(s, verb, activity)]
            if page:
                yield page
            more = data.get("more")
            if not entries or not isinstance(more, str) or not more.strip():
                return
            url = self._follow(more.strip())
            if str(url) in followed:
                raise PayloadError("xAPI statements: the `more` links go round in a loop")
            followed.add(str(url))

    def store(self, statements: Sequence[Mapping[str, Any]]) -> list[str]:
        """`POST statements`: store statements, each with its own `id` (so that a retried POST
        cannot store one twice); the ids the LRS stored (none when it had them all already)."""
        if any(not isinstance(s.get("id"), str) for s in statements):
            raise ValueError("every statement needs its `id` before it is sent")
        request = self._http.build_request("POST", self.statements_url, json=list(statements))
        response = send(self._http, request, self._policy, what="xAPI store statements")
        ids = load_json(response.content) if response.content else []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise PayloadError("xAPI store statements: the answer is not a list of ids")
        return ids

    def _get(self, url: httpx.URL) -> dict[str, Any]:
        request = self._http.build_request("GET", url)
        response = send(self._http, request, self._policy, what="xAPI statements")
        data = load_json(response.content)
        if not isinstance(data, dict):
            raise PayloadError("xAPI statements: the answer is not a JSON object")
        return data

    def _follow(self, more: str) -> httpx.URL:
        # The spec's `more` is a path (with query) on the LRS's origin; an absolute URL is
        # accepted only on that same origin.
        try:
            url = self._endpoint.join(more)
        except (httpx.InvalidURL, ValueError) as exc:
            raise PayloadError("xAPI statements: the `more` link is not a URL") from exc
        mine = self._endpoint
        if (url.scheme, url.host, url.port) != (mine.scheme, mine.host, mine.port):
            raise PayloadError("xAPI statements: the `more` link leads away from the LRS")
        return url


def _iso(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC).isoformat()
    except OverflowError:  # within hours of year 1 or 9999; said with its own offset
        return aware.isoformat()


def _order(statement: Statement) -> tuple[datetime, str]:
    return (statement.position or datetime.min.replace(tzinfo=UTC), statement.id)


def _matches(statement: Statement, verb: str | None, activity: str | None) -> bool:
    return (verb is None or statement.verb_id == verb) and (
        activity is None or statement.activity == activity
    )


class Cursor(BaseModel):
    """How far a poll has read: the last `stored` instant read, and the ids of the statements
    read at exactly that instant. Store it as JSON (`model_dump_json`) between runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stored: Moment | None = None
    seen: frozenset[str] = frozenset()

    @field_serializer("seen")
    def _sorted(self, seen: frozenset[str]) -> list[str]:
        return sorted(seen)

    def admits(self, statement: Statement) -> bool:
        """Whether the statement lies beyond the cursor (not read before)."""
        position = statement.position
        if position is None:
            return False
        if self.stored is None or position > self.stored:
            return True
        return position == self.stored and statement.id not in self.seen

    def since(self, overlap: timedelta) -> datetime | None:
        """The `since` to ask the LRS for: a little before the cursor (`since` is exclusive)."""
        if self.stored is None:
            return None
        try:
            return self.stored - overlap
        except OverflowError:
            return datetime.min.replace(tzinfo=UTC)

    def past(self, statements: Sequence[Statement]) -> "Cursor":
        """The cursor moved past `statements` (all of which it admits)."""
        positioned = [(s.position, s.id) for s in statements if s.position is not None]
        if not positioned:
            return self
        last = max(position for position, _ in positioned)
        if self.stored is not None and last < self.stored:
            return self
        seen = {sid for position, sid in positioned if position == last}
        if last == self.stored:
            seen |= self.seen
        return Cursor(stored=last, seen=frozenset(seen))


def poll(
    client: XapiClient,
    cursor: Cursor | None,
    max_statements: int,
    *,
    verb: str | None = None,
    activity: str | None = None,
    limit: int = PAGE_LIMIT,
    overlap: timedelta = OVERLAP,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Statement], Cursor]:
    """The statements stored after `cursor` (all of them for None), oldest first, at most
    `max_statements`, and the cursor to resume from. `progress` hears the count so far after
    each page. Keep one cursor per (LRS, verb, activity) query."""
    if max_statements < 1 or limit < 1:
        raise ValueError("max_statements and limit must be at least 1")
    start = cursor or Cursor()
    found: list[Statement] = []
    taken: set[str] = set()
    pages = client.pages(
        since=start.since(overlap), verb=verb, activity=activity, limit=min(limit, max_statements)
    )
    with closing(pages):
        for page in pages:
            for statement in page:
                if statement.position is None:
                    log.warning("xAPI: skipped statement %.80r: no `stored` time", statement.id)
            # Sorted here too: an LRS may order a page otherwise (Ralph's file-system backend
            # reverses each page it serves in ascending order).
            fresh = sorted((s for s in page if start.admits(s) and s.id not in taken), key=_order)
            for statement in fresh[: max_statements - len(found)]:
                found.append(statement)
                taken.add(statement.id)
            if progress is not None and fresh:
                progress(len(found))
            if len(found) >= max_statements:
                break
    return found, start.past(found)
