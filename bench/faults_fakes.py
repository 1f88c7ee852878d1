"""The fault suite's targets: the GitHub and Jira contract fakes, recording every effect and
answering with injected faults.

An *effect* is one lesson applied to one work item, keyed `<work item ref>|<lesson id>`:

- GitHub: a `PATCH` of a pull request's body that brings a lesson's item (its `cairn:item`
  marker) into the body. A `PATCH` that rewrites the body unchanged applies every item in it
  again: its writer read the body before an earlier write landed (two handlers of one message
  running at once) and, against a person editing meanwhile, would have overwritten the edit.
  The one exception is the client repeating a write whose answer the fake cut off
  (apply-then-reset): it cannot know the write landed, and repeating a whole-body `PATCH` is
  safe, so that repeat is not an effect.
- Jira: a created sub-task carrying the `cairn.lesson` property; a second one for the same
  lesson is a duplicate sub-task a person would see.

Faults, drawn per request from a seeded generator: 429 with `Retry-After` (nothing applied),
bursts of 503 (nothing applied), slow answers (applied, answered late), and apply-then-reset on
writes (applied, then the connection is reset with no answer).
"""

import json
import random
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from connectors.github.fake import FakeGitHub
from connectors.github.section import MARKER_PREFIX
from connectors.jira.fake import API, JiraFake

Answer = tuple[int, Any, dict[str, str]]
Respond = Callable[[str, str, dict[str, str], bytes], Answer]

_PULL = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)$")
_ITEM = re.compile(r"<!-- " + re.escape(MARKER_PREFIX) + r"(?P<id>[A-Za-z0-9%_.:@~-]+) -->")
_WRITES = re.compile(r"^(PATCH /repos/.+/pulls/\d+|POST /rest/api/3/issue)$")


_REQUEST = threading.local()
"""The request a server thread is answering: when it arrived and the fault it is served."""


def _circumstances() -> str:
    arrived: float | None = getattr(_REQUEST, "arrived", None)
    if arrived is None:
        return ""
    fault = getattr(_REQUEST, "fault", None)
    served = {"slow": "answer delayed", "reset": "answer cut off"}.get(fault or "", "")
    late = time.time() - arrived
    return f" (request {late:.1f} s earlier{', ' + served if served else ''})"


@dataclass(frozen=True, slots=True)
class Effect:
    """One lesson applied to one work item, as a target recorded it."""

    effect_id: str
    handle: str
    how: str
    at: float


@dataclass
class Ledger:
    """Every effect the fakes recorded, in order; safe to use from the servers' threads."""

    effects: list[Effect] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, work_item: str, lesson: str, handle: str, how: str) -> None:
        """Record one effect (`how` says what the target saw)."""
        with self.lock:
            how += _circumstances()
            self.effects.append(Effect(f"{work_item}|{lesson}", handle, how, time.time()))

    def snapshot(self) -> list[Effect]:
        """The effects so far."""
        with self.lock:
            return list(self.effects)


def lesson_in_line(line: str, titles: dict[str, str]) -> str | None:
    """The lesson whose title the item line shows (titles: title → lesson id)."""
    found = [lesson for title, lesson in titles.items() if title in line]
    return found[0] if len(found) == 1 else None


def items(body: str | None, titles: dict[str, str]) -> list[tuple[str, str]]:
    """(placement id, lesson id) of every Cairn item line in a pull-request body."""
    found = []
    for line in (body or "").split("\n"):
        match = _ITEM.search(line)
        if match is not None:
            found.append((match["id"], lesson_in_line(line, titles) or f"?{match['id']}"))
    return found


class RecordingGitHub(FakeGitHub):
    """The GitHub fake, recording the effects of every body write in `ledger`."""

    def __init__(self, ledger: Ledger, titles: dict[str, str]) -> None:
        super().__init__()
        self.ledger = ledger
        self.titles = titles
        self.reset_writes: dict[tuple[str, int], str] = {}
        self.repeats_after_reset = 0
        self.unavailable: set[tuple[str, int]] = set()
        """Pull requests whose every API request answers 500 (a poison message's cause)."""

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        """Serve the request; a body write records what it applied."""
        path = urlsplit(target).path
        match = _PULL.match(path) or re.match(r"^/repos/([^/]+/[^/]+)/pulls/(\d+)/", path)
        key = None if match is None else (match.group(1), int(match.group(2)))
        with self.lock:
            if key in self.unavailable:
                return 500, {"message": "Server Error"}, {}
            if method != "PATCH" or key is None or key not in self.pulls:
                return super().dispatch(method, target, headers, body)
            before = self.pulls[key].body or ""
            reply = super().dispatch(method, target, headers, body)
            after = self.pulls[key].body or ""
            if reply[0] == 200:
                self._record(key, before, after)
            return reply

    def _record(self, key: tuple[str, int], before: str, after: str) -> None:
        ref = f"github:{key[0]}#{key[1]}"
        had = {placement for placement, _ in items(before, self.titles)}
        if after == before and self.reset_writes.pop(key, None) == after:
            self.repeats_after_reset += 1
            return
        for placement, lesson in items(after, self.titles):
            if placement not in had:
                self.ledger.add(ref, lesson, placement, "item written into the body")
            elif after == before:
                self.ledger.add(ref, lesson, placement, "item rewritten from a stale read")

    def mark_reset(self, target: str) -> None:
        """The fake cut off the answer to this write: a repeat of it is the client's retry."""
        match = _PULL.match(urlsplit(target).path)
        if match is not None:
            key = (match["repo"], int(match["n"]))
            with self.lock:
                if key in self.pulls:
                    self.reset_writes[key] = self.pulls[key].body or ""


class RecordingJira(JiraFake):
    """The Jira fake, recording every lesson sub-task created in `ledger`."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(projects={"OPS"})
        self.ledger = ledger

    def create(self, fields: dict[str, Any], properties: list[Any] | None = None) -> dict[str, Any]:
        """Store the issue; a sub-task carrying `cairn.lesson` is an effect on its parent."""
        with self.lock:
            issue = super().create(fields, properties)
            for prop in properties or []:
                value = prop.get("value") if isinstance(prop, dict) else None
                if prop.get("key") == "cairn.lesson" and isinstance(value, dict):
                    parent = (fields.get("parent") or {}).get("key")
                    lesson = str(value.get("lesson", "?")).split("@")[0]
                    self.ledger.add(f"jira:{parent}", lesson, issue["key"], "sub-task created")
            return issue


@dataclass
class FaultPlan:
    """How often each fault is served (per request; resets per write)."""

    seed: int
    rate_limited: float = 0.03
    burst_start: float = 0.01
    burst_length: int = 3
    slow: float = 0.03
    slow_seconds: float = 2.0
    reset_write: float = 0.08
    served: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._burst_left = 0
        self._lock = threading.Lock()

    def draw(self, line: str) -> str | None:
        """The fault for this request ("METHOD /path"), or None."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                fault: str | None = "5xx"
            else:
                roll = self._random.random()
                write = _WRITES.match(line) is not None
                fault = None
                if write and roll < self.reset_write:
                    fault = "reset"
                elif (roll := self._random.random()) < self.rate_limited:
                    fault = "429"
                elif roll < self.rate_limited + self.burst_start:
                    fault = "5xx"
                    self._burst_left = self.burst_length - 1
                elif roll < self.rate_limited + self.burst_start + self.slow:
                    fault = "slow"
            if fault is not None:
                self.served[fault] += 1
            return fault


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a client went away mid-answer (a worker killed while it waited)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serve_faulty(
    respond: Respond,
    plan: FaultPlan,
    *,
    on_reset: Callable[[str], None] = lambda _target: None,
    api_prefix: str = "",
) -> Iterator[str]:
    """Serve `respond` on an ephemeral loopback port, injecting `plan`'s faults; yields the URL."""

    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            line = f"{self.command} {urlsplit(self.path).path}"
            fault = plan.draw(line) if line.startswith(f"{self.command} {api_prefix}") else None
            _REQUEST.arrived, _REQUEST.fault = time.time(), fault
            if fault == "429":
                self._send(429, {"message": "rate limited"}, {"Retry-After": "1"})
                return
            if fault == "5xx":
                self._send(503, {"message": "unavailable"}, {})
                return
            if fault == "slow":
                time.sleep(plan.slow_seconds)
            status, payload, extra = respond(self.command, self.path, headers, body)
            if fault == "reset" and 200 <= status < 300:
                on_reset(self.path)
                # SO_LINGER 0: close with a TCP reset, the answer never sent.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            self._send(status, payload, extra)

        def _send(self, status: int, payload: Any, extra: dict[str, str]) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = _QuietServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def running_github(fake: RecordingGitHub, plan: FaultPlan) -> Iterator[RecordingGitHub]:
    """Serve the GitHub fake with faults until the block ends (`fake.url` set meanwhile)."""
    with serve_faulty(fake.answer, plan, on_reset=fake.mark_reset, api_prefix="/repos/") as url:
        fake.url = url
        yield fake


@contextmanager
def running_jira(fake: RecordingJira, plan: FaultPlan) -> Iterator[RecordingJira]:
    """Serve the Jira fake with faults until the block ends (`fake.url` set meanwhile)."""

    def respond(method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        return fake.dispatch(method, target, headers.get("authorization"), body)

    with serve_faulty(respond, plan, api_prefix=f"{API}/issue") as url:
        fake.url = url
        yield fake
