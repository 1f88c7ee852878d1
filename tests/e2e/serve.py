"""Run `cairn serve` as a real subprocess and send it signed generic events."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from connectors.generic.webhook import sign

CAIRN = str(Path(sys.executable).parent / "cairn")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServeProcess:
    """`cairn serve` (or `args`) in its own process group, killable with SIGKILL and
    restartable."""

    def __init__(
        self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ("serve",)
    ) -> None:
        self.env = {**os.environ, **env}
        self.args = args
        self.port = int(env["CAIRN_PORT"])
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the API."""
        return f"http://127.0.0.1:{self.port}"

    def cairn(self, *args: str) -> str:
        """Run another `cairn` command with the same environment; returns its stdout."""
        done = subprocess.run(
            [CAIRN, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self, ready_within: float = 60.0) -> float:
        """Start and wait for `/readyz`; returns seconds until ready."""
        started = time.monotonic()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [CAIRN, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = started + ready_within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"cairn serve exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"cairn serve not ready in {ready_within}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, like a crash or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def incident_event(number: int) -> bytes:
    """A canonical resolved-incident event, distinct per number."""
    return json.dumps(
        {
            "type": "incident",
            "incident": {
                "source": "generic",
                "external_id": f"E{number:04d}",
                "title": f"Synthetic incident {number}",
                "status": "resolved",
                "severity": "medium",
                "services": [f"svc-{number % 7}"],
            },
        }
    ).encode()


def post_until_accepted(
    client: httpx.Client, secret: str, msg_id: str, body: bytes, give_up_after: float = 120.0
) -> int:
    """Send like a real sender: retry on connection errors and 5xx, freshly signed each time."""
    deadline = time.monotonic() + give_up_after
    while True:
        try:
            response = client.post(
                "/hooks/generic", content=body, headers=sign(secret, msg_id, body)
            )
            if response.status_code < 500:
                return response.status_code
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{msg_id} was never accepted")
        time.sleep(0.05)
