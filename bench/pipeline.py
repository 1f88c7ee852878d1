"""End-to-end pipeline throughput, and the broker's own limit beside it.

Signed `work_item` webhooks (generic source) go to a real `cairn serve` process; the pipeline
runs inbound → hydrate → route (a synthetic organisation's rules and lessons, from
`bench/rules_engine.py`) → embed, writing each pull request's section through PyGithub to the
GitHub contract fake on loopback (its pacing set to 0: GitHub's own pacing would measure GitHub's
rate limits, not Cairn). Per transport:

- **embedded** (SQLite file, workers inside `cairn serve`; "workers" is `CAIRN_CONCURRENCY`);
- **embedded-processes** (one SQLite file, `cairn serve --no-workers` plus that many `cairn
  worker` processes, each with `CAIRN_CONCURRENCY=4`, or `--worker-concurrency`; not in the
  default list);
- **rabbitmq** and **nats** (PostgreSQL, `cairn serve --no-workers` plus that many
  `cairn worker` processes, each with `CAIRN_CONCURRENCY=4`, or `--worker-concurrency`).

Each run sends `--events` deliveries as fast as `--concurrency` senders can, and measures the
sustained rate (events accepted ÷ time until every message is done) and the acknowledgement
latency of the burst; then it sends at half that rate for `--paced-seconds` and measures the
acknowledgement latency there. Beside it, the raw FastStream rate on the same broker: publish
(persistent, confirmed) and consume with a handler that only parses the message.

Last line per transport, one JSON object:
`{"bench": "pipeline", "broker": …, "raw_mps": …, "cairn_eps_1w": …, "cairn_eps_3w": …,
"ack_p50_ms": …, "ack_p99_ms": …}` (ack figures at half the one-worker sustained rate).

    .venv/bin/python bench/pipeline.py --events 2000 --transports embedded,rabbitmq,nats
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import yaml
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))
import rules_engine  # the synthetic organisation: rules, lessons, work items

from connectors.github.fake import FakeGitHub
from connectors.standard_webhooks import sign
from core.base import utcnow
from core.work import System
from store import lessons, migrate, outbox
from store.engine import Database, normalise_url

CAIRN = str(Path(sys.executable).parent / "cairn")
SECRET = "whsec_" + "cGlwZWxpbmUtYmVuY2gtc2VjcmV0LTAxMjM0NTY3"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


# ── the world ──────────────────────────────────────────────────────────────────────────────


class World:
    """Rules written as packs, lessons to publish, and GitHub work items to send."""

    def __init__(self, rules: int, lessons_n: int, events: int, seed: int, folder: Path) -> None:
        world = rules_engine.build_world(rules, lessons_n, events * 3, seed)
        self.lessons = world.lessons
        self.items = [i for i in world.items if i.system == System.GITHUB][:events]
        if len(self.items) < events:
            raise SystemExit(f"the generated organisation has only {len(self.items)} PRs")
        self.rules = folder / "rules"
        self.rules.mkdir()
        for pack in world.rule_set.packs:
            data = pack.model_dump(mode="json", exclude_defaults=True, by_alias=True)
            (self.rules / f"{pack.pack}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    def publish(self, db: Database) -> None:
        with db.transaction() as session:
            for lesson in self.lessons:
                lessons.add(session, lesson, utcnow())
                lessons.publish(session, lesson.id, utcnow())


# ── processes ──────────────────────────────────────────────────────────────────────────────


class Stack:
    """`cairn serve` (with or without its workers) and `cairn worker` processes."""

    def __init__(self, env: dict[str, str], folder: Path, workers: int, apart: bool) -> None:
        self.env = {**os.environ, **env}
        self.port = int(env["CAIRN_PORT"])
        self.procs: list[subprocess.Popen[bytes]] = []
        api = ["serve", "--no-workers"] if apart else ["serve"]
        self._spawn(api, folder / "api.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise SystemExit(f"cairn serve did not become ready; see {folder / 'api.log'}")
        logs = [folder / f"worker-{n}.log" for n in range(workers if apart else 0)]
        for log in logs:
            self._spawn(["worker"], log)
        # Measure from when every worker consumes, not while they are still starting.
        deadline = time.monotonic() + 60
        while not all("worker running" in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit(f"a cairn worker did not start; see {folder}")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, args: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.procs.append(
                subprocess.Popen([CAIRN, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT)
            )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'cairn.db'}"
        return
    name = f"cairn_pipe_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ── sending ────────────────────────────────────────────────────────────────────────────────


def _body(item: Any) -> bytes:
    return json.dumps(
        {"type": "work_item", "work_item": item.model_dump(mode="json", exclude_none=True)}
    ).encode()


class Sender:
    """One sender's keep-alive connection (http.client: the lightest client the standard
    library has, so the load generator does not take the CPU the server under test needs)."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def post(self, n: int, body: bytes) -> tuple[int, float]:
        """Deliver one signed body; (status, seconds until the answer was read)."""
        headers = sign(SECRET, f"msg_{uuid.uuid4().hex}_{n}", body)
        headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            started = time.perf_counter()
            try:
                self.conn.request("POST", "/hooks/generic", body=body, headers=headers)
                answer = self.conn.getresponse()
                answer.read()
            except (http.client.HTTPException, ConnectionError):
                # The server closed an idle keep-alive connection as the request went out:
                # open a new one and send again (the delivery id makes a repeat harmless).
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            taken = time.perf_counter() - started
            if answer.getheader("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return answer.status, taken
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def send_burst(url: str, bodies: list[bytes], concurrency: int) -> list[float]:
    """Send every body as fast as `concurrency` senders can; the acknowledgement latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(enumerate(bodies))

    def sender() -> None:
        client = Sender(url)
        try:
            while True:
                with lock:
                    nxt = next(todo, None)
                if nxt is None:
                    return
                n, body = nxt
                status, taken = client.post(n, body)
                if status != 202:
                    raise SystemExit(f"delivery {n}: {status}")
                with lock:
                    latencies.append(taken)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(sender) for _ in range(concurrency)]:
            future.result()
    return latencies


def send_paced(url: str, bodies: list[bytes], rate: float) -> list[float]:
    """Open loop: one delivery every 1/rate seconds, whatever the answers take (a pool of
    keep-alive senders, so a slow answer never delays the next delivery's start)."""
    latencies: list[float] = []
    lock = threading.Lock()
    idle: list[Sender] = []

    def one(n: int, body: bytes) -> None:
        with lock:
            client = idle.pop() if idle else Sender(url)
        status, taken = client.post(n, body)
        with lock:
            idle.append(client)
            if status == 202:
                latencies.append(taken)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=64) as pool:
        for n, body in enumerate(bodies):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, n, body)
    for client in idle:
        client.close()
    return latencies


def drained(url: str, timeout: float) -> float:
    """Wait until no message is pending or leased; returns when (perf_counter).

    Watches through a plain read-only engine: Cairn's own `Database` starts every SQLite
    transaction with the write lock (BEGIN IMMEDIATE), and the watcher would compete for it
    with the pipeline it measures.
    """
    engine = create_engine(normalise_url(url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with Session(engine) as session:
                counts = outbox.counts(session)
            if counts["pending"] == 0 and counts["leased"] == 0:
                if counts["dead"]:
                    raise SystemExit(f"{counts['dead']} messages dead-lettered")
                return time.perf_counter()
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise SystemExit(f"the pipeline did not drain in {timeout:.0f} s: {counts}")


# ── one run ────────────────────────────────────────────────────────────────────────────────


def run(
    world: World, transport: str, workers: int, args: argparse.Namespace, folder: Path
) -> dict[str, Any]:
    broker = not transport.startswith("embedded")
    # Worker processes apart from the API: every broker, and `embedded-processes`.
    apart = transport != "embedded"
    with (
        database("postgresql" if broker else "sqlite", folder) as url,
        FakeGitHub(actor="cairn-bot").running() as fake,
    ):
        db = Database(url)
        migrate.upgrade(db)
        world.publish(db)
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        items = []
        for item in world.items:
            opened = fake.open_pull(
                item.project, title=item.title or "change", body="", files=list(item.changed_paths)
            )
            number = opened.payload["number"]
            items.append(item.model_copy(update={"ref": f"github:{item.project}#{number}"}))
        env = {
            "CAIRN_DATABASE_URL": url,
            "CAIRN_BROKER_URL": {"rabbitmq": args.rabbit_url, "nats": args.nats_url}.get(
                transport, ""
            ),
            "CAIRN_BROKER_PREFIX": prefix,
            "CAIRN_RULES_PATH": str(world.rules),
            "CAIRN_GENERIC_WEBHOOK_SECRET": SECRET,
            "CAIRN_GITHUB_TOKEN": "ghp_fake",
            "CAIRN_GITHUB_API_URL": fake.url,
            "CAIRN_GITHUB_ACTOR": "cairn-bot",
            "CAIRN_GITHUB_SECONDS_BETWEEN_REQUESTS": "0",
            "CAIRN_GITHUB_SECONDS_BETWEEN_WRITES": "0",
            "CAIRN_PORT": str(free_port()),
            "CAIRN_CONCURRENCY": str(workers if not apart else args.worker_concurrency),
        }
        stack = Stack(env, folder, workers, apart)
        try:
            bodies = [_body(item) for item in items]
            started = time.perf_counter()
            burst = send_burst(stack.url, bodies, args.concurrency)
            sent = time.perf_counter()
            done = drained(url, timeout=args.timeout)
            eps = len(bodies) / (done - started)
            # Where an event's time went (embedded: every stage runs in `cairn serve`).
            spent = None if apart else stage_time(stack.url, len(bodies))
            paced_n = max(20, int(args.paced_seconds * eps / 2))
            again = [
                _body(items[n % len(items)].model_copy(update={"title": f"again {n}"}))
                for n in range(paced_n)
            ]
            paced = send_paced(stack.url, again, eps / 2)
            drained(url, timeout=args.timeout)
            writes = sum(fake.writes.values())
        finally:
            stack.stop()
            db.dispose()
            if broker:
                asyncio.run(_remove_topology(transport, prefix, args))
    result = {
        "transport": transport,
        "workers": workers,
        "events": len(bodies),
        "eps": round(eps, 1),
        "sent_in_s": round(sent - started, 2),
        "drained_in_s": round(done - started, 2),
        "burst_ack_p50_ms": round(1000 * percentile(burst, 0.5), 1),
        "burst_ack_p99_ms": round(1000 * percentile(burst, 0.99), 1),
        "paced_rate": round(eps / 2, 1),
        "paced_events": len(paced),
        "ack_p50_ms": round(1000 * percentile(paced, 0.5), 1),
        "ack_p99_ms": round(1000 * percentile(paced, 0.99), 1),
        "pr_writes": writes,
    }
    if spent is not None:
        result["stage_ms_per_event"] = spent
    print(json.dumps(result), flush=True)
    return result


def stage_time(url: str, events: int) -> dict[str, float]:
    """Milliseconds per event each stage phase took, summed over its messages (from the
    `cairn_stage_seconds` histogram's sums on `/metrics`), largest first."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    spent: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("cairn_stage_seconds_sum{"):
            continue
        labels, _, value = line.rpartition(" ")
        found = dict(part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(","))
        name = f"{found['topic'].strip(chr(34))}.{found['phase'].strip(chr(34))}"
        spent[name] = round(1000 * float(value) / events, 2)
    return dict(sorted(spent.items(), key=lambda kv: -kv[1]))


async def _remove_topology(transport: str, prefix: str, args: argparse.Namespace) -> None:
    """Delete the queues and exchanges (RabbitMQ) or streams (NATS) a run declared."""
    with suppress(Exception):
        if transport == "rabbitmq":
            import aio_pika

            from router.ruleset.active import ActiveRules
            from router.stages import build_stages

            async with await aio_pika.connect(args.rabbit_url) as connection:
                channel = await connection.channel()
                for topic in [*build_stages(ActiveRules(None)), "dead"]:
                    await channel.queue_delete(f"{prefix}.{topic}")
                for exchange in (prefix, f"{prefix}.dlx"):
                    await channel.exchange_delete(exchange)
        else:
            import nats

            from router.transport.nats import stream_name

            connection = await nats.connect(args.nats_url)
            js = connection.jetstream()
            for name in (stream_name(prefix), f"{stream_name(prefix)}_dead"):
                with suppress(Exception):
                    await js.delete_stream(name)
            await connection.close()


# ── the broker alone ───────────────────────────────────────────────────────────────────────


def raw_rate(transport: str, args: argparse.Namespace) -> float | None:
    """FastStream publish (persistent, confirmed) → consume with a handler that only parses."""
    if transport.startswith("embedded"):
        return None
    return asyncio.run(_raw(transport, args))


async def _raw(transport: str, args: argparse.Namespace) -> float:
    count = args.raw_messages
    got = 0
    finished = asyncio.Event()
    name = f"bench-raw-{uuid.uuid4().hex[:8]}"

    async def handle(body: dict[str, Any]) -> None:
        nonlocal got
        int(body["id"])
        got += 1
        if got >= count:
            finished.set()

    if transport == "rabbitmq":
        from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitQueue

        broker: Any = RabbitBroker(
            args.rabbit_url,
            default_channel=Channel(prefetch_count=16, publisher_confirms=True),
            logger=None,
        )
        queue = RabbitQueue(name, queue_type=QueueType.QUORUM, durable=True)
        broker.subscriber(queue)(handle)
        await broker.start()

        async def publish(n: int) -> None:
            await broker.publish({"id": n}, queue=queue, persist=True)
    else:
        from faststream.nats import JStream, NatsBroker, PullSub

        broker = NatsBroker(args.nats_url, logger=None)
        stream = JStream(name, subjects=[f"{name}.work"])
        broker.subscriber(
            f"{name}.work", stream=stream, durable=name, pull_sub=PullSub(batch_size=16)
        )(handle)
        await broker.start()

        async def publish(n: int) -> None:
            await broker.publish({"id": n}, f"{name}.work", stream=name)

    started = time.perf_counter()
    semaphore = asyncio.Semaphore(64)

    async def one(n: int) -> None:
        async with semaphore:
            await publish(n)

    await asyncio.gather(*(one(n) for n in range(count)))
    await asyncio.wait_for(finished.wait(), timeout=120)
    taken = time.perf_counter() - started
    if transport == "rabbitmq":
        await broker.stop()
        import aio_pika

        async with await aio_pika.connect(args.rabbit_url) as connection:
            channel = await connection.channel()
            await channel.queue_delete(name)
    else:
        js = broker.config.connection_state.stream
        await broker.stop()
        with suppress(Exception):
            import nats

            conn = await nats.connect(args.nats_url)
            await conn.jetstream().delete_stream(name)
            await conn.close()
        del js
    return count / taken


# ── main ───────────────────────────────────────────────────────────────────────────────────


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--lessons", type=int, default=1000)
    parser.add_argument("--transports", default="embedded,rabbitmq,nats")
    parser.add_argument("--workers", default="1,3")
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=4,
        help="CAIRN_CONCURRENCY of each `cairn worker` (broker modes, embedded-processes)",
    )
    parser.add_argument("--raw-messages", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--rabbit-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="cairn-pipeline-"))
    try:
        world = World(args.rules, args.lessons, args.events, args.seed, folder)
        summaries = []
        for transport in args.transports.split(","):
            raw = raw_rate(transport, args)
            runs = {}
            for workers in (int(w) for w in args.workers.split(",")):
                run_folder = folder / f"{transport}-{workers}"
                run_folder.mkdir()
                runs[workers] = run(world, transport, workers, args, run_folder)
            first = runs[min(runs)]
            summary = {
                "bench": "pipeline",
                "broker": transport,
                "raw_mps": None if raw is None else round(raw, 1),
                **{f"cairn_eps_{w}w": r["eps"] for w, r in runs.items()},
                "ack_p50_ms": first["ack_p50_ms"],
                "ack_p99_ms": first["ack_p99_ms"],
            }
            summaries.append(summary)
        for summary in summaries:
            print(json.dumps(summary), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
