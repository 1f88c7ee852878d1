"""Private PostgreSQL and RabbitMQ servers for the fault suite, free to restart and kill.

Each runs from the system's binaries with its data, logs and configuration in a temporary
directory and on ports nobody else uses, so restarting them never disturbs another server on
the machine. PostgreSQL refuses to run as root: as root, its commands run as the `postgres`
account, which then owns the data directory.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _postgres_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust auth, loopback only) with a `cairn` database."""

    def __init__(self, base: Path) -> None:
        self.bin = _postgres_bin()
        self.base = base / "postgres"
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.running = False
        self.closed = False

    @property
    def url(self) -> str:
        """The `cairn` database's URL."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/cairn"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1"
        ctl = [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        _run([*self.as_owner, *ctl, "-o", options, "-w", "-t", "60", *args])

    def start(self) -> None:
        """Create the cluster and the database, and start the server."""
        self.base.mkdir(parents=True)
        if self.as_owner:
            shutil.chown(self.base, "postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
        _run([*self.as_owner, *initdb, "--no-sync", "-E", "UTF8"])
        self._ctl("start")
        self.running = True
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        _run([*psql, "-q", "-c", "CREATE DATABASE cairn"])

    def restart(self) -> float:
        """Restart in immediate mode (no checkpoint, clients cut off: a crash and a reboot);
        returns the seconds it took."""
        started = time.monotonic()
        if not self.closed:
            self._ctl("-m", "immediate", "restart")
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the server (immediately) if it runs; it is not restarted after this."""
        self.closed = True
        if self.running:
            self.running = False
            self._ctl("-m", "immediate", "stop")


class PrivateRabbit:
    """A RabbitMQ node of its own (`cairnfaults@localhost`), no plugins, loopback only."""

    def __init__(self, base: Path, node: str = "cairnfaults@localhost") -> None:
        self.base = base / "rabbitmq"
        self.node = node
        self.port = free_port()
        self.dist_port = free_port()
        self.running = False
        self.closed = False

    @property
    def url(self) -> str:
        """The AMQP URL of the node."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def env(self) -> dict[str, str]:
        """The environment every RabbitMQ command of this node runs with (its own cookie too)."""
        return {
            **os.environ,
            "HOME": str(self.base),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _ctl(self, *args: str) -> None:
        _run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env)

    def start(self) -> float:
        """Start the node and wait until it serves AMQP; returns the seconds it took."""
        started = time.monotonic()
        if self.closed:
            return 0.0
        if not self.base.exists():
            self.base.mkdir(parents=True)
            (self.base / "rabbitmq-env.conf").write_text(f"NODENAME={self.node}\n")
            (self.base / "rabbitmq.conf").write_text(
                f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            )
            (self.base / "enabled_plugins").write_text("[].\n")
        _run([str(RABBIT_BIN / "rabbitmq-server"), "-detached"], env=self.env)
        self.running = True
        deadline = started + 90
        while True:  # the node registers with epmd a moment after -detached returns
            try:
                self._ctl("await_startup", "--timeout", "60")
                return time.monotonic() - started
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def restart(self) -> float:
        """Stop the whole node and start it again; returns the seconds it was away."""
        started = time.monotonic()
        self.halt()
        self.start()
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the node for good: it is not started again after this."""
        self.closed = True
        self.halt()

    def halt(self) -> None:
        """Stop and halt the node if it runs (killing it if it does not answer)."""
        if not self.running:
            return
        self.running = False
        pid_file = self.base / "node.pid"
        try:
            self._ctl("stop")
        except RuntimeError:
            if pid_file.exists() and pid_file.read_text().strip().isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _listening(self.port):
            time.sleep(0.1)
