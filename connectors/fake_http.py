"""A tiny loopback JSON server the contract fakes build on: routes, scripted failures, a log."""

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

Reply = tuple[int, Any]
Answer = tuple[int, Any, Mapping[str, str]]
"""(status, JSON body or None for an empty body, extra response headers)."""
Handler = Callable[[dict[str, str], dict[str, list[str]], Any], Reply]
"""(path parameters, query, JSON body or None) → (status, JSON body)."""


@dataclass(slots=True)
class Failure:
    """A scripted answer served instead of the real one, `times` times."""

    status: int
    times: int
    retry_after: str | None = None
    message: str = "scripted failure"

    @property
    def headers(self) -> dict[str, str]:
        """The response headers it adds (Retry-After, when scripted)."""
        return {} if self.retry_after is None else {"Retry-After": self.retry_after}


class Failures:
    """Scripted failures, served in the order given; safe to use from the server's threads."""

    def __init__(self) -> None:
        self._queue: list[Failure] = []
        self._lock = threading.Lock()

    def add(self, failure: Failure) -> None:
        """Serve `failure` once the ones scripted before it are spent."""
        with self._lock:
            self._queue.append(failure)

    def next(self) -> Failure | None:
        """The failure due for this request, if any (spending one of its times)."""
        with self._lock:
            while self._queue and self._queue[0].times <= 0:
                self._queue.pop(0)
            if not self._queue:
                return None
            self._queue[0].times -= 1
            return self._queue[0]


@dataclass
class FakeServer:
    """Serves registered routes on 127.0.0.1; `auth` is the Authorization header it demands."""

    auth: str
    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def route(self, method: str, template: str, handler: Handler) -> None:
        """Answer `method template` (e.g. `GET /incidents/{id}`) with `handler`."""
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` requests with `status` (and a Retry-After header if given)."""
        self.failures.add(Failure(status, times, retry_after))

    def dispatch(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        """The reply to one request, or the scripted failure due."""
        parts = urlsplit(target)
        if headers.get("authorization") != self.auth:
            return 401, {"error": "unauthorized"}
        for route_method, pattern, handler in self.routes:
            match = pattern.match(parts.path)
            if route_method == method and match is not None:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                data = json.loads(body) if body else None
                return handler(params, parse_qs(parts.query), data)
        return 404, {"error": "no such route"}

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        """Log the request, then serve the scripted failure due or the route's reply."""
        with self.lock:
            self.requests.append(f"{method} {urlsplit(target).path}")
        failure = self.failures.next()
        if failure is None:
            status, payload = self.dispatch(method, target, headers, body)
            return status, payload, {}
        return failure.status, {"error": failure.message}, failure.headers

    @contextmanager
    def running(self) -> Iterator["FakeServer"]:
        """Serve on an ephemeral loopback port until the block ends; `url` is set meanwhile."""
        with serve(self.answer) as url:
            self.url = url
            yield self


class ServedFake:
    """A contract fake answering through a `FakeServer` (set as `server` by the subclass)."""

    server: FakeServer

    @contextmanager
    def running(self) -> Iterator[Self]:
        """Serve on loopback for the duration of the block (base URL in `url`)."""
        with self.server.running():
            yield self

    @property
    def url(self) -> str:
        """The base URL while running."""
        return self.server.url


@contextmanager
def serve(
    answer: Callable[[str, str, dict[str, str], bytes], Answer],
    *,
    content_type: str = "application/json",
) -> Iterator[str]:
    """Serve `answer(method, target, lower-cased headers, body)` as JSON on an ephemeral
    loopback port until the block ends; yields the base URL. Every contract fake runs on it."""

    class _Handler(BaseHTTPRequestHandler):
        # Keep-alive, as the real services answer: a client reuses its connection instead of
        # opening one per request (every answer carries its Content-Length). Headers and body
        # go out as separate writes: without TCP_NODELAY the body waits on a delayed ACK.
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = answer(self.command, self.path, headers, body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test and demo output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
