"""The fault suite's processes and its nemesis: `cairn` processes it can `kill -9` and restart,
and a schedule of kills, broker restarts and database restarts at random moments."""

import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CAIRN = str(Path(sys.executable).parent / "cairn")


class CairnProcess:
    """One `cairn serve` or `cairn worker` process, killable with SIGKILL and restartable."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{env['CAIRN_PORT']}" if args[0] == "serve" else None
        self.started_at = 0.0
        self.retired = False

    def start(self) -> None:
        """Start the process (not waiting for it to be ready); never again once stopped."""
        if self.retired:
            return
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [CAIRN, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.started_at = time.monotonic()

    def ready(self) -> bool:
        """True once it serves (the API answers `/healthz`) or runs (a worker, after 3 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return False
        if self.url is None:
            return time.monotonic() - self.started_at > 3.0
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def exited(self) -> bool:
        """True when it was started and has ended."""
        return self.proc is not None and self.proc.poll() is not None

    def wait_ready(self, seconds: float = 90.0) -> None:
        """Wait until ready (a supervisor restarts it if it exits); raises if it takes too long."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready in {seconds:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, like a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL; it is not started again."""
        self.retired = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        """The end of its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Nemesis:
    """Runs `kills` kill -9s, broker and database restarts at random moments over `window` s."""

    processes: list[CairnProcess]
    window: float
    kills: int
    broker_restart: Callable[[], float] | None
    broker_restarts: int
    db_restart: Callable[[], float] | None
    db_restarts: int
    seed: int
    done: Counter[str] = field(default_factory=Counter)
    events: list[tuple[float, str]] = field(default_factory=list)
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def schedule(self) -> list[tuple[float, str]]:
        """(seconds from the start, what) for every fault, in order."""
        chance = random.Random(self.seed)
        plan = ["kill"] * self.kills
        plan += ["broker"] * (self.broker_restarts if self.broker_restart else 0)
        plan += ["db"] * (self.db_restarts if self.db_restart else 0)
        times = sorted(chance.uniform(0.05, 0.95) * self.window for _ in plan)
        chance.shuffle(plan)
        return list(zip(times, plan, strict=True))

    def run(self) -> None:
        """Carry out the schedule (in a thread: errors are kept in `error`)."""
        chance = random.Random(self.seed + 1)
        started = time.monotonic()
        try:
            for at, what in self.schedule():
                delay = started + at - time.monotonic()
                if self.stop.wait(max(0.0, delay)):
                    return
                if what == "kill":
                    self._kill(chance)
                elif what == "broker" and self.broker_restart is not None:
                    took = self.broker_restart()
                    self._note(f"RabbitMQ restarted (away {took:.1f} s)", "broker_restarts")
                elif what == "db" and self.db_restart is not None:
                    took = self.db_restart()
                    self._note(f"PostgreSQL restarted -m immediate ({took:.1f} s)", "db_restarts")
        except BaseException as exc:
            self.error = exc

    def _kill(self, chance: random.Random) -> None:
        victim = chance.choice(self.processes)
        victim.wait_ready()
        # A random point in its work, not the moment it became ready.
        time.sleep(chance.uniform(0.0, 1.5))
        with self.lock:
            victim.kill()
            self._note(f"kill -9 {victim.name}", "kills")
            time.sleep(chance.uniform(0.2, 1.0))
            victim.start()

    def supervise(self, until: threading.Event) -> None:
        """Restart a process that exited on its own, as a service manager would (a worker
        that cannot reach the broker at start-up exits)."""
        while not until.wait(0.5):
            with self.lock:
                for process in self.processes:
                    if process.exited():
                        code = process.proc.returncode if process.proc else None
                        self._note(f"{process.name} exited ({code}); restarted", "exits")
                        process.start()

    def _note(self, event: str, counter: str) -> None:
        self.done[counter] += 1
        self.events.append((time.time(), event))
