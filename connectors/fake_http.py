"""A tiny loopback JSON server the contract fakes build on: routes, scripted failures, a log."""

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Reply = tuple[int, Any]
Handler = Callable[[dict[str, str], dict[str, list[str]], Any], Reply]
"""(path parameters, query, JSON body or None) → (status, JSON body)."""


@dataclass(slots=True)
class Failure:
    """A scripted answer served instead of the real one, `times` times."""

    status: int
    times: int
    retry_after: str | None = None


@dataclass
class FakeServer:
    """Serves registered routes on 127.0.0.1; `auth` is the Authorization header it demands."""

    auth: str
    routes: list[tuple[str, re.Pattern[str], Handler]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def route(self, method: str, template: str, handler: Handler) -> None:
        """Answer `method template` (e.g. `GET /incidents/{id}`) with `handler`."""
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def fail(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` requests with `status` (and a Retry-After header if given)."""
        with self.lock:
            self.failures.append(Failure(status, times, retry_after))

    def _failure(self) -> Failure | None:
        with self.lock:
            while self.failures and self.failures[0].times <= 0:
                self.failures.pop(0)
            if not self.failures:
                return None
            self.failures[0].times -= 1
            return self.failures[0]

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

    @contextmanager
    def running(self) -> Iterator["FakeServer"]:
        """Serve on an ephemeral loopback port until the block ends; `url` is set meanwhile."""
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake.lock:
                    fake.requests.append(f"{self.command} {urlsplit(self.path).path}")
                failure = fake._failure()
                extra: dict[str, str] = {}
                if failure is not None:
                    status, payload = failure.status, {"error": "scripted failure"}
                    if failure.retry_after is not None:
                        extra["Retry-After"] = failure.retry_after
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, payload = fake.dispatch(self.command, self.path, headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return  # keep test output quiet

        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
