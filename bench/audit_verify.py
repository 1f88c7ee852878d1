"""How long `cairn audit verify` takes over a large audit log (target: 1,000,000 rows < 30 s).

Builds a migrated database (a temporary SQLite file, or --database-url), appends N chained
entries shaped like the pipeline's (placement.planned / signal.ticked with their details) in
batches, then times `store.audit.verify` walking the whole chain. Prints one JSON line.
"""

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from store import audit, migrate
from store.engine import Database
from store.tables import AuditHeadRow, AuditRow


def fill(db: Database, rows: int, batch: int = 20_000) -> float:
    """Append `rows` chained entries; returns the seconds it took."""
    started = time.perf_counter()
    prev, t0 = audit.GENESIS, datetime(2026, 9, 1, tzinfo=UTC)
    for first in range(1, rows + 1, batch):
        values = []
        for seq in range(first, min(first + batch, rows + 1)):
            at = t0 + timedelta(seconds=seq)
            action = "placement.planned" if seq % 3 else "signal.ticked"
            subject = f"github:acme/api-{seq % 500}#{seq % 9000}"
            details = {
                "placement": f"pl_{seq:020x}",
                "lesson": f"lesson-{seq % 300}@1",
                "rule": "org/rule",
                "delivery": f"d-{seq}",
            }
            digest = audit.entry_hash(prev, seq, at, "cairn:route", action, subject, details)
            values.append(
                {
                    "at": at,
                    "actor": "cairn:route",
                    "action": action,
                    "subject": subject,
                    "details": details,
                    "seq": seq,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        with db.transaction() as session:
            session.execute(insert(AuditRow), values)
    with db.transaction() as session:
        head = session.get(AuditHeadRow, 1)
        assert head is not None
        head.seq, head.hash = rows, prev
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None, help="Default: a temporary SQLite file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'audit.db'}"
        db = Database(url)
        migrate.upgrade(db)
        filled = fill(db, args.rows)
        started = time.perf_counter()
        with db.transaction() as session:
            verdict = audit.verify(session)
        seconds = time.perf_counter() - started
        db.dispose()
    assert verdict.intact and verdict.checked == args.rows, verdict
    print(
        json.dumps(
            {
                "backend": url.split(":")[0],
                "rows": args.rows,
                "fill_seconds": round(filled, 1),
                "verify_seconds": round(seconds, 2),
                "rows_per_second": round(args.rows / seconds),
            }
        )
    )


if __name__ == "__main__":
    main()
