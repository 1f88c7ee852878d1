"""A real xAPI LRS for the tests: Ralph, from its own virtualenv (`deploy/ralph/install.sh`).

`ralph_lrs` starts Ralph's API server with the file-system backend on a free loopback port, in a
fresh directory, with a Basic-auth user written by Ralph's own `ralph auth`, and stops it after
the test. Without the virtualenv the tests skip locally and fail under CI=true.

Ralph's API is served by uvicorn with `RALPH_RUNSERVER_BACKEND=fs`, which is what
`ralph runserver -b fs` runs, less its auto-reload (a second process that watches the working
directory and restarts the server), and with one adjustment (`LAUNCHER`): Ralph 5.1's
file-system LRS backend writes its statements file in `create` mode, so every write after the
first fails with 500 ("Statements bulk indexation failed"); the launcher makes it append.
Everything the tests talk to (auth, validation, `stored`, queries, paging) is Ralph's own code.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[3]
RALPH_VENV = Path(os.environ.get("CAIRN_TEST_RALPH_VENV", ROOT / ".venv-ralph"))
VERSION_HEADER = {"X-Experience-API-Version": "1.0.3"}
START_TIMEOUT = 30.0
LAUNCHER = """
import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), access_log=False)
"""


class LrsAccess(NamedTuple):
    """Where an LRS answers and the Basic-auth user to reach it with."""

    base_url: str
    username: str
    password: str


def write_statements(lrs: LrsAccess, statements: Sequence[Mapping[str, Any]]) -> list[str]:
    """Store statements with the LRS's own API (`POST /xAPI/statements`, a list); their ids."""
    response = httpx.post(
        f"{lrs.base_url}/xAPI/statements",
        json=list(statements),
        auth=(lrs.username, lrs.password),
        headers=VERSION_HEADER,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    ids: list[str] = response.json()
    return ids


def put_statement(lrs: LrsAccess, statement: Mapping[str, Any]) -> None:
    """Store one statement under its id (`PUT /xAPI/statements?statementId=`)."""
    response = httpx.put(
        f"{lrs.base_url}/xAPI/statements",
        params={"statementId": statement["id"]},
        json=dict(statement),
        auth=(lrs.username, lrs.password),
        headers=VERSION_HEADER,
        timeout=30,
    )
    assert response.status_code == 204, response.text


def _ralph_bin(name: str) -> Path:
    return RALPH_VENV / "bin" / name


def require_ralph() -> None:
    """Skip (locally) or fail (under CI=true) when Ralph's virtualenv is not installed."""
    if _ralph_bin("ralph").exists():
        return
    message = f"Ralph is not installed in {RALPH_VENV} (run deploy/ralph/install.sh)"
    if IN_CI:
        pytest.fail(message + " (CI=true: the real LRS is required, not optional)")
    pytest.skip(message)


def _ralph_env(home: Path, auth_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RALPH_")}
    env.update(
        RALPH_APP_DIR=str(home),
        RALPH_AUTH_FILE=str(auth_file),
        RALPH_RUNSERVER_BACKEND="fs",
        RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH=str(home / "statements"),
    )
    return env


@pytest.fixture(scope="session")
def ralph_user(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """An auth file with one user (all scopes), written by `ralph auth`; (file, user, password)."""
    require_ralph()
    home = tmp_path_factory.mktemp("ralph-auth")
    auth_file = home / "auth.json"
    username, password = "cairn-test", secrets.token_urlsafe(18)
    subprocess.run(
        [str(_ralph_bin("ralph")), "auth", "--username", username, "--password", password,
         "--scope", "all", "--agent-ifi-mbox", "mailto:cairn-test@example.com", "--write-to-disk"],
        cwd=home, env=_ralph_env(home, auth_file), check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert auth_file.is_file()
    return auth_file, username, password


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _start(home: Path, auth_file: Path, port: int) -> subprocess.Popen[bytes] | None:
    """Ralph answering on `port`, or None if it exited first (the port was taken meanwhile)."""
    log = (home / "ralph.log").open("ab")
    process = subprocess.Popen(
        [str(_ralph_bin("python")), "-c", LAUNCHER, str(port)],
        cwd=home, env=_ralph_env(home, auth_file), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            if httpx.get(f"http://127.0.0.1:{port}/__heartbeat__", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    _stop(process)
    return None


@pytest.fixture
def ralph_lrs(tmp_path: Path, ralph_user: tuple[Path, str, str]) -> Iterator[LrsAccess]:
    """A fresh Ralph LRS (file-system backend) on loopback for this test; stopped afterwards."""
    source, username, password = ralph_user
    home = tmp_path / "ralph"
    (home / "statements").mkdir(parents=True)
    auth_file = home / "auth.json"
    shutil.copy(source, auth_file)
    for _ in range(3):
        port = _free_port()
        process = _start(home, auth_file, port)
        if process is not None:
            break
    else:
        pytest.fail("Ralph did not start:\n" + (home / "ralph.log").read_text()[-3000:])
    try:
        yield LrsAccess(f"http://127.0.0.1:{port}", username, password)
    finally:
        _stop(process)
