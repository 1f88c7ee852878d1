"""The fault suite: signed webhooks through Cairn into recording, faulty targets, under a
nemesis; then lost, duplicated and unexpected effects are counted.

A generator delivers N signed webhooks (GitHub `pull_request.opened`, Jira `issue_created`,
each with its own delivery id, retried on connection errors and 5xx with the same id) to
`cairn serve`; the pipeline routes the fault suite's lessons and embeds them in the GitHub and
Jira contract fakes, which record every effect and inject 429s with Retry-After, 503 bursts,
slow answers and apply-then-reset writes. Meanwhile a nemesis `kill -9`s the API and the
workers at random moments and, in broker mode, restarts RabbitMQ and PostgreSQL (immediate).

Modes: `broker` runs `cairn serve --no-workers` and two `cairn worker` processes on a private
PostgreSQL cluster and a private RabbitMQ node (both in a temporary directory on free ports,
torn down at the end); `embedded` runs `cairn serve` on a SQLite file, workers in-process.

A few poison deliveries (pull requests whose API answers 500, or 404) must end dead-lettered
after the configured attempts; the suite then checks `cairn queue dead`, fixes the cause, runs
`cairn queue retry-dead`, and expects their effects too. The last line printed is one JSON
object with the counts; the exit status is 1 when anything was lost, duplicated or unexpected,
or any other check failed.
"""

import argparse
import json
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from faults_check import Recorded, Recording, check
from faults_fakes import (
    FaultPlan,
    Ledger,
    RecordingGitHub,
    RecordingJira,
    running_github,
    running_jira,
)
from faults_load import Delivery, Load, Senders, titles, write_inputs
from faults_nemesis import CAIRN, CairnProcess, Nemesis
from faults_servers import PrivatePostgres, PrivateRabbit, free_port
from sqlalchemy import select

from store import outbox
from store.engine import Database
from store.tables import OutboxRow

POISON = ("unavailable", "missing")


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    deliveries: int
    kills: int
    broker_restarts: int
    db_restarts: int
    rate: float
    poison_each: int


FULL = Size(deliveries=1000, kills=24, broker_restarts=3, db_restarts=2, rate=3.5, poison_each=2)
QUICK = Size(deliveries=200, kills=5, broker_restarts=1, db_restarts=1, rate=4.0, poison_each=1)


def say(text: str) -> None:
    """A progress line."""
    print(f"[faults] {text}", flush=True)


class Failed(Exception):
    """A check of the suite (other than the effect counts) failed."""


@dataclass
class Stack:
    """The running system: its database URL, processes and fault knobs."""

    database_url: str
    processes: list[CairnProcess]
    env: dict[str, str]
    broker_restart: Callable[[], float] | None
    db_restart: Callable[[], float] | None

    def cairn(self, *args: str) -> str:
        """Run a `cairn` command against the stack; its stdout."""
        done = subprocess.run(
            [CAIRN, *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise Failed(f"cairn {' '.join(args)} failed: {done.stderr[-1500:]}")
        return done.stdout


def _cairn_env(database_url: str, broker_url: str, inputs: dict[str, str]) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "CAIRN_DATABASE_URL": database_url,
        "CAIRN_BROKER_URL": broker_url,
        "CAIRN_BROKER_PREFIX": "cairnfaults",
        "CAIRN_LEASE_SECONDS": "15",
        "CAIRN_REPUBLISH_SECONDS": "45",
        "CAIRN_POLL_INTERVAL": "0.2",
        "CAIRN_MAX_ATTEMPTS": "5",
        "CAIRN_CONCURRENCY": "4",
        **inputs,
    }


@contextmanager
def system(
    mode: str, work: Path, github: RecordingGitHub, jira: RecordingJira, secrets_: dict[str, str]
) -> Iterator[Stack]:
    """Start the private servers (broker mode) and the `cairn` processes; stop all after."""
    lessons_file, rules_dir = write_inputs(work)
    port = free_port()
    inputs = {
        "CAIRN_PORT": str(port),
        "CAIRN_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "CAIRN_RULES_PATH": str(rules_dir),
        "CAIRN_GITHUB_WEBHOOK_SECRET": secrets_["github"],
        "CAIRN_GITHUB_TOKEN": next(iter(github.tokens)),
        "CAIRN_GITHUB_API_URL": github.url,
        "CAIRN_GITHUB_ACTOR": github.actor,
        "CAIRN_JIRA_WEBHOOK_SECRET": secrets_["jira"],
        "CAIRN_JIRA_URL": jira.url,
        "CAIRN_JIRA_EMAIL": jira.email,
        "CAIRN_JIRA_API_TOKEN": jira.token,
        "CAIRN_JIRA_ACCOUNT_ID": jira.account_id,
    }
    with ExitStack() as stack:
        if mode == "broker":
            postgres = PrivatePostgres(work)
            stack.callback(postgres.stop)
            postgres.start()
            rabbit = PrivateRabbit(work)
            stack.callback(rabbit.stop)
            took = rabbit.start()
            say(f"private PostgreSQL :{postgres.port}, RabbitMQ :{rabbit.port} ({took:.1f} s)")
            env = _cairn_env(postgres.url, rabbit.url, inputs)
            processes = [CairnProcess("api", ["serve", "--no-workers"], env, work / "api.log")]
            processes += [
                CairnProcess(f"worker-{n}", ["worker"], env, work / f"worker-{n}.log")
                for n in (1, 2)
            ]
            knobs: tuple[Any, Any] = (rabbit.restart, postgres.restart)
            database_url = postgres.url
        else:
            database_url = f"sqlite:///{work / 'cairn.db'}"
            env = _cairn_env(database_url, "", inputs)
            processes = [CairnProcess("serve", ["serve"], env, work / "serve.log")]
            knobs = (None, None)
        built = Stack(database_url, processes, env, *knobs)
        built.cairn("db", "upgrade")
        say(built.cairn("lessons", "import", str(lessons_file), "--trust-reviews").strip())
        for process in processes:
            stack.callback(process.stop)
            process.start()
        for process in processes:
            process.wait_ready()
        yield built


def queue_counts(db: Database) -> dict[str, int] | None:
    """The outbox's messages per status, or None while the database is away."""
    try:
        with db.transaction() as session:
            counts: dict[str, int] = outbox.counts(session)
            return counts
    except Exception:
        return None


def drain(db: Database, ledger: Ledger, wanted: set[str], seconds: float) -> float | None:
    """Wait until every wanted effect is recorded; the seconds it took, or None if it did not
    happen in time."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if wanted <= {e.effect_id for e in ledger.snapshot()}:
            return time.monotonic() - started
        time.sleep(0.25)
    return None


def settle(db: Database, seconds: float) -> dict[str, int] | None:
    """Wait until no message is pending or leased (retries done, poison dead-lettered)."""
    deadline = time.monotonic() + seconds
    counts = None
    while time.monotonic() < deadline:
        counts = queue_counts(db)
        if counts is not None and counts["pending"] + counts["leased"] == 0:
            return counts
        time.sleep(0.25)
    return counts


def clock(at: float) -> str:
    """A wall-clock time to the millisecond, as the services' logs show it."""
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"


def trace(
    db: Database, ledger: Ledger, effect_ids: set[str], events: list[tuple[float, str]]
) -> Iterator[str]:
    """For each effect id recorded more than once: when each copy landed, the faults just
    before it, and the work item's pipeline messages (attempts, status, last error)."""
    for effect_id in sorted(effect_ids):
        work_item = effect_id.split("|")[0]
        for effect in (e for e in ledger.snapshot() if e.effect_id == effect_id):
            near = [f"{clock(t)} {what}" for t, what in events if effect.at - 20 < t <= effect.at]
            yield (
                f"trace {effect_id}: {clock(effect.at)} {effect.handle} {effect.how}; "
                f"faults in the 20 s before: {near or 'none'}"
            )
        with db.transaction() as session:
            rows = session.scalars(
                select(OutboxRow).where(OutboxRow.key == work_item).order_by(OutboxRow.id)
            ).all()
            for row in rows:
                error = (row.last_error or "").splitlines()[0][:120] if row.last_error else ""
                yield (
                    f"  message {row.id} {row.topic}: {row.status}, {row.attempts} attempt(s), "
                    f"created {row.created_at:%H:%M:%S.%f}, done {row.done_at or '-'} {error}"
                )


def poison_round(
    stack: Stack, db: Database, load: Load, poison: list[Delivery], problems: list[str]
) -> int:
    """`cairn queue dead` lists exactly the poison messages; fix their cause; `retry-dead`.
    Returns the number of messages requeued."""
    dead = [line for line in stack.cairn("queue", "dead").splitlines() if line[:1].isdigit()]
    say(f"cairn queue dead: {len(dead)} message(s)")
    for line in dead:
        say(f"  {line[:160]}")
    listed = {int(line.split("\t")[0]) for line in dead}
    refs = {d.work_item for d in poison}
    with db.transaction() as session:
        rows = session.execute(
            select(OutboxRow.id, OutboxRow.key).where(
                OutboxRow.key.in_(refs), OutboxRow.status == "dead"
            )
        ).all()
    if {key for _id, key in rows} != refs:
        problems.append(f"poison not dead-lettered: {sorted(refs - {k for _i, k in rows})}")
    if listed != {ident for ident, _key in rows}:
        problems.append(f"queue dead lists {sorted(listed)}, the poison is {sorted(rows)}")
    load.fix_poison()
    answer = stack.cairn("queue", "retry-dead").strip()
    say(f"cause fixed; cairn queue retry-dead: {answer}")
    if answer != f"requeued {len(dead)} messages":
        problems.append(f"retry-dead answered {answer!r} for {len(dead)} dead messages")
    return len(dead)


def run(mode: str, size: Size, seed: int, work: Path) -> dict[str, Any]:
    """One run of the suite in `mode`; the result line's fields."""
    ledger = Ledger()
    github, jira = RecordingGitHub(ledger, titles()), RecordingJira(ledger)
    plan = FaultPlan(seed)
    secrets_ = {"github": secrets.token_hex(20), "jira": secrets.token_hex(20)}
    problems: list[str] = []
    with (
        running_github(github, plan),
        running_jira(jira, plan),
        system(mode, work, github, jira, secrets_) as stack,
        ExitStack() as halt,  # leaves first: no kill or restart while the system is torn down
    ):
        load = Load(github, jira, secrets_["github"], secrets_["jira"])
        makers: list[Callable[[], Delivery]] = []
        for n, cause in enumerate(c for c in POISON for _ in range(size.poison_each)):
            makers.append(partial(load.poison, n, cause))
        for n in range(size.deliveries - len(makers)):
            # Two in five are Jira issues, the rest pull requests.
            makers.append(partial(load.issue if n % 5 in (1, 3) else load.pull_request, n))
        url = stack.processes[0].url
        assert url is not None
        senders = Senders(url, size.rate)
        window = size.deliveries / size.rate
        nemesis = Nemesis(
            stack.processes,
            window,
            size.kills,
            stack.broker_restart,
            size.broker_restarts,
            stack.db_restart,
            size.db_restarts,
            seed,
        )
        sent: list[Delivery] = []
        chaos = threading.Thread(target=nemesis.run, daemon=True)
        supervising = threading.Event()
        supervisor = threading.Thread(target=nemesis.supervise, args=(supervising,), daemon=True)
        halt.callback(nemesis.stop.set)
        halt.callback(supervising.set)
        started = time.monotonic()
        chaos.start()
        supervisor.start()
        say(f"{mode}: sending {size.deliveries} webhooks at {size.rate}/s over {window:.0f} s")
        senders.run(makers, sent)
        chaos.join()
        if nemesis.error is not None:
            raise Failed(f"the nemesis failed: {nemesis.error}") from nemesis.error
        for process in stack.processes:
            if not process.ready():
                process.wait_ready()
        sending = time.monotonic() - started
        for at, event in nemesis.events:
            say(f"  {clock(at)} {event}")
        accepted = [
            d
            for d in sent
            if (senders.outcomes[d.delivery_id].status or 0) < 300
            and senders.outcomes[d.delivery_id].status is not None
        ]
        refused = [d for d in sent if d not in accepted]
        for delivery in refused:
            outcome = senders.outcomes[delivery.delivery_id]
            problems.append(f"delivery {delivery.delivery_id} answered {outcome.status}")
        tries = sum(senders.outcomes[d.delivery_id].tries for d in sent)
        say(f"all sent in {sending:.0f} s: {len(accepted)} accepted, {tries} tries in all")
        db = Database(stack.database_url)
        poison = [d for d in accepted if d.poison]
        wanted = {e for d in accepted if not d.poison for e in d.effects}
        drained = drain(db, ledger, wanted, 300.0)
        say(f"drained in {drained:.1f} s" if drained is not None else "NOT drained in 300 s")
        say(f"queue settled: {settle(db, 120.0)}")
        poison_round(stack, db, load, poison, problems)
        everything = {e for d in accepted for e in d.effects}
        if drain(db, ledger, everything, 120.0) is None:
            problems.append("the requeued poison messages did not complete")
        settle(db, 60.0)
        left = [line for line in stack.cairn("queue", "dead").splitlines() if line.strip()]
        if left:
            problems.append(f"still dead after retry-dead: {left}")
        say(f"queue after the run: {queue_counts(db)}")
        copies = Counter(effect.effect_id for effect in ledger.snapshot())
        duplicated = {effect_id for effect_id, n in copies.items() if n > 1}
        for line in trace(db, ledger, duplicated, nemesis.events):
            say(line)
        db.dispose()
        supervising.set()
        supervisor.join()
    recording = Recording(
        {e: d.delivery_id for d in accepted for e in d.effects},
        [Recorded(e.effect_id, e.handle, e.how) for e in ledger.snapshot()],
    )
    recording.dump(work / "recording.json")
    verdict = check(recording)
    for line in verdict.lines(recording.expected):
        say(line)
    say(
        f"faults served by the targets: {dict(plan.served)}; "
        f"GitHub writes repeated after a reset: {github.repeats_after_reset}"
    )
    if nemesis.done["exits"]:
        say(f"processes that exited on their own and were restarted: {nemesis.done['exits']}")
    for problem in problems:
        say(f"PROBLEM: {problem}")
    return {
        "bench": "faults",
        "mode": mode,
        "deliveries": len(accepted),
        "kills": nemesis.done["kills"],
        "broker_restarts": nemesis.done["broker_restarts"],
        "db_restarts": nemesis.done["db_restarts"],
        "lost": len(verdict.lost),
        "duplicated": len(verdict.duplicated),
        "unexpected": len(verdict.unexpected),
        "drain_seconds": None if drained is None else round(drained, 1),
        "problems": len(problems),
    }


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds the stack: servers are torn down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("broker", "embedded"), default="broker")
    parser.add_argument("--quick", action="store_true", help="About 200 deliveries, 5 kills.")
    parser.add_argument("--deliveries", type=int, help="Override the size's delivery count.")
    parser.add_argument("--kills", type=int, help="Override the size's kill count.")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--keep", type=Path, help="Keep logs and the recording in this folder.")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    if args.mode == "embedded":
        size = Size(size.deliveries, size.kills, 0, 0, size.rate, size.poison_each)
    if args.deliveries is not None or args.kills is not None:
        size = Size(
            args.deliveries or size.deliveries,
            size.kills if args.kills is None else args.kills,
            size.broker_restarts,
            size.db_restarts,
            size.rate,
            size.poison_each,
        )
    signal.signal(signal.SIGTERM, _terminate)
    with ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f"faults-{args.mode}-", dir=args.keep))
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cairn-faults-")))
        work.chmod(0o755)
        try:
            result = run(args.mode, size, args.seed, work)
        except Failed as exc:
            say(f"FAILED: {exc}")
            say(f"logs in {work}" if args.keep else "rerun with --keep DIR to keep the logs")
            result = {"bench": "faults", "mode": args.mode, "error": str(exc)[:300]}
            print(json.dumps(result))
            return 1
    print(json.dumps(result))
    counts = ("lost", "duplicated", "unexpected", "problems")
    return 1 if any(result[k] for k in counts) or result["drain_seconds"] is None else 0


if __name__ == "__main__":
    sys.exit(main())
