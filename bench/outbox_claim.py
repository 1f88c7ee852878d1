"""What one outbox claim costs when work piles up, on SQLite and PostgreSQL.

A claim leases up to 100 due messages, only the oldest open message of each key (per-key
order). Two ways to find those heads are timed on the same database:

- **join** (the baseline, Cairn's claim before): the due messages whose id is among each key's
  head, `id IN (SELECT min(id) … GROUP BY key)`. The natural way to write it; PostgreSQL plans
  the join from its statistics.
- **probe** (`store.outbox`): walk the open messages in id order and check each candidate with
  a correlated lookup of its key's oldest open message in a partial index of open messages.

History: 10,000 messages queued then marked done (as the pipeline leaves them), analysed. Then
one of two backlogs arrives:
- `burst`: 3,000 messages on keys of their own;
- `hot_key`: 10,000 messages on one key (a backfill of the `diffuse` key), then 3,000 others.

Each is timed twice: right after the backlog arrived, before anything re-analysed the table
(`stale`: what autovacuum leaves for up to a minute on a small table, and for far longer on a
large one), and after `ANALYZE` (`analysed`). The median of the first `--repeat` claims of the
drain, each committed, as a relay leases (counting no attempt).
One JSON line per case:
`{"bench": "outbox_claim", "database": …, "backlog": …, "statistics": …, "join_ms": …,
"probe_ms": …}`.

    .venv/bin/python bench/outbox_claim.py
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Integer, and_, bindparam, func, insert, or_, select, update

sys.path.insert(0, str(Path(__file__).parent.parent))
from core.base import utcnow
from store import migrate, outbox
from store.engine import Database
from store.outbox import MessageStatus

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T = outbox._T


def _join_claim() -> Any:
    """Cairn's claim before the probe: due messages among every key's head, by a join."""
    heads = (
        select(func.min(T.c.id))
        .where(T.c.status.in_((MessageStatus.PENDING.value, MessageStatus.LEASED.value)))
        .group_by(T.c.key)
    )
    due = (
        select(T.c.id)
        .where(
            or_(
                and_(
                    T.c.status == MessageStatus.PENDING.value,
                    T.c.available_at <= bindparam("now"),
                ),
                and_(
                    T.c.status == MessageStatus.LEASED.value,
                    T.c.leased_until <= bindparam("now"),
                ),
            ),
            T.c.id.in_(heads),
        )
        .order_by(T.c.id)
        .limit(bindparam("claim_limit", type_=Integer))
        .with_for_update(skip_locked=True)
    )
    return outbox._claiming(0, due)


CLAIMS = {"join": _join_claim(), "probe": outbox._CLAIM_FOR_RELAY}


@contextmanager
def database(kind: str) -> Iterator[Database]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            db = Database(f"sqlite:///{folder}/claim.db")
            migrate.upgrade(db)
            yield db
            db.dispose()
        return
    name = f"cairn_claim_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = Database(ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        migrate.upgrade(db)
        yield db
        db.dispose()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def analyse(db: Database) -> None:
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("ANALYZE outbox")
        conn.commit()


def settled(db: Database, count: int) -> None:
    """History as the pipeline leaves it: messages queued, then marked done."""
    add(db, [f"old-{n}" for n in range(count)])
    with db.transaction() as session:
        session.connection().execute(update(T).values(status=MessageStatus.DONE.value))


def add(db: Database, keys: list[str]) -> None:
    now = utcnow()
    rows = [
        {
            "topic": "bench",
            "key": key,
            "payload": {},
            "status": MessageStatus.PENDING.value,
            "attempts": 0,
            "available_at": now,
            "created_at": now,
        }
        for key in keys
    ]
    with db.transaction() as session:
        session.connection().execute(insert(T), rows)


def time_claims(db: Database, claim: Any, repeat: int) -> float:
    """Median milliseconds of one claim of 100 over the first `repeat` claims of a drain."""
    spent = []
    for _ in range(repeat):
        now = utcnow()
        started = time.perf_counter()
        with db.transaction() as session:
            leased = (
                session.connection()
                .execute(
                    claim,
                    {
                        "now": now,
                        "until": now + timedelta(minutes=5),
                        "token": None,
                        "claim_limit": 100,
                    },
                )
                .all()
            )
        spent.append(1000 * (time.perf_counter() - started))
        if len(leased) != 100:
            raise SystemExit(f"a claim leased {len(leased)} messages, not 100")
    return statistics.median(spent)


def run(kind: str, backlog: str, repeat: int) -> list[dict[str, Any]]:
    results = []
    for statistic in ("stale", "analysed"):
        row: dict[str, Any] = {
            "bench": "outbox_claim",
            "database": kind,
            "backlog": backlog,
            "statistics": statistic,
        }
        for name, claim in CLAIMS.items():
            with database(kind) as db:
                settled(db, 10_000)
                analyse(db)
                if backlog == "hot_key":
                    add(db, ["diffuse"] * 10_000)
                add(db, [f"new-{n}" for n in range(3_000)])
                if statistic == "analysed":
                    analyse(db)
                row[f"{name}_ms"] = round(time_claims(db, claim, repeat), 1)
        print(json.dumps(row), flush=True)
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--backlogs", default="burst,hot_key")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for kind in args.databases.split(","):
        for backlog in args.backlogs.split(","):
            run(kind, backlog, args.repeat)


if __name__ == "__main__":
    main()
