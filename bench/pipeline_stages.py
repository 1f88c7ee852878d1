"""The pipeline's stages in one thread: what an event costs Cairn, and how many round trips.

`bench/pipeline.py` measures the whole path (HTTP, threads, processes, brokers). This takes those
away to show what the stages themselves cost: `--events` signed `work_item` deliveries of the
pipeline bench's organisation are accepted as the webhook route accepts them (inbox row and
outbox message, one transaction each, not timed), then drained in one thread through the same
`Dispatcher` that `cairn serve` builds, embedding through PyGithub into the GitHub contract fake
(which serves from threads of this process, so its CPU is counted here too). Two paths:

- `embedded`: claim up to eight due messages, run each with the claim's token (an embedded
  worker);
- `broker`: lease due messages as the relay does, then run each id as a broker delivery
  (`count_attempts`: the delivery counts its attempt and takes the message first).

Counted per event: statements sent, transactions begun (not autocommit statements), commits,
and the pool's connection checks (`pool_pre_ping`, PostgreSQL); on SQLite the time each commit
took (`--no-background-checkpoint`: SQLite's own checkpoints, inside commits, as before
`cairn serve` ran them from a thread). One JSON line:

`{"bench": "pipeline_stages", "database": …, "path": …, "lessons": …, "events": …,
"ms_per_event": …, "cpu_ms_per_event": …, "statements": …, "begins": …, "commits": …,
"pings": …, "commit_p50_us": …, "commit_p99_us": …, "commits_over_1ms": …}`

    .venv/bin/python bench/pipeline_stages.py --database sqlite --path embedded
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).parent))
import pipeline  # the pipeline bench: its organisation, bodies, database and secret

from connectors.github.fake import FakeGitHub
from connectors.standard_webhooks import sign
from store import migrate
from store.engine import Database


def percentile(values: list[float], q: float) -> float:
    return pipeline.percentile(values, q) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--path", choices=["embedded", "broker"], default="embedded")
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--lessons", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-background-checkpoint", action="store_true")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="cairn-stages-"))
    world = pipeline.World(args.rules, args.lessons, args.events, args.seed, folder)
    with (
        pipeline.database(args.database, folder) as url,
        FakeGitHub(actor="cairn-bot").running() as fake,
    ):
        setup = Database(url)
        migrate.upgrade(setup)
        world.publish(setup)
        setup.dispose()
        items = []
        for item in world.items:
            opened = fake.open_pull(
                item.project, title=item.title or "change", body="", files=list(item.changed_paths)
            )
            ref = f"github:{item.project}#{opened.payload['number']}"
            items.append(item.model_copy(update={"ref": ref}))
        os.environ.update(
            {
                "CAIRN_DATABASE_URL": url,
                "CAIRN_RULES_PATH": str(world.rules),
                "CAIRN_GENERIC_WEBHOOK_SECRET": pipeline.SECRET,
                "CAIRN_GITHUB_TOKEN": "ghp_fake",
                "CAIRN_GITHUB_API_URL": fake.url,
                "CAIRN_GITHUB_ACTOR": "cairn-bot",
                "CAIRN_GITHUB_SECONDS_BETWEEN_REQUESTS": "0",
                "CAIRN_GITHUB_SECONDS_BETWEEN_WRITES": "0",
            }
        )
        result = drain(args, items)
    print(json.dumps(result), flush=True)


def drain(args: argparse.Namespace, items: list[Any]) -> dict[str, Any]:
    from router.compose import build_runtime
    from router.http.ingress import _accept
    from router.pipeline import Dispatcher
    from router.settings import Settings
    from router.transport.poller import Pacing, claim_due
    from store import outbox

    runtime = build_runtime(Settings())
    db = runtime.db
    if not args.no_background_checkpoint:
        db.checkpoint_in_background()  # as `cairn serve` and `cairn worker` do
    runtime.rules.warm(db)
    verifier = runtime.verifiers["generic"]
    for n, item in enumerate(items):
        body = pipeline._body(item)
        headers = sign(pipeline.SECRET, f"msg_{uuid.uuid4().hex}_{n}", body)
        _accept(runtime, "generic", verifier.verify(headers, body).delivery_key, headers, body)

    counts = {"statements": 0, "begins": 0, "pings": 0}
    commits: list[float] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _statement(*_: Any) -> None:
        counts["statements"] += 1

    @event.listens_for(db.engine, "begin")
    def _begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            counts["begins"] += 1

    dialect = db.engine.dialect
    commit, ping = dialect.do_commit, dialect.do_ping

    def timed_commit(dbapi_connection: Any) -> None:
        started = time.perf_counter()
        commit(dbapi_connection)
        commits.append(time.perf_counter() - started)

    def counted_ping(dbapi_connection: Any) -> bool:
        counts["pings"] += 1
        return bool(ping(dbapi_connection))

    dialect.do_commit = timed_commit  # type: ignore[method-assign]
    dialect.do_ping = counted_ping  # type: ignore[method-assign]

    broker = args.path == "broker"
    pacing = Pacing(max_attempts=runtime.settings.max_attempts)
    dispatcher = (
        Dispatcher(db, runtime.dispatcher.stages, count_attempts=True)
        if broker
        else runtime.dispatcher
    )
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    messages = 0
    while True:
        batch = claim_due(db, pacing, 100 if broker else 8, for_relay=broker)
        if not batch:
            break
        for message in batch:
            dispatcher.run(message.id, token=None if broker else message.token)
            messages += 1
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    with db.transaction() as session:
        left = outbox.counts(session)
    if left["pending"] or left["leased"] or left["dead"]:
        raise SystemExit(f"the pipeline did not drain cleanly: {left}")
    db.dispose()
    n = len(items)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "bench": "pipeline_stages",
        "database": args.database,
        "path": args.path,
        "lessons": args.lessons,
        "events": n,
        "messages": messages,
        "ms_per_event": round(1000 * elapsed / n, 2),
        "cpu_ms_per_event": round(1000 * cpu / n, 2),
        **{name: round(value / n, 1) for name, value in counts.items()},
        "commits": round(len(commits) / n, 1),
        "commit_p50_us": round(1e6 * percentile(commits, 0.5)),
        "commit_p99_us": round(1e6 * percentile(commits, 0.99)),
        "commits_over_1ms": sum(1 for c in commits if c > 0.001),
    }


if __name__ == "__main__":
    main()
