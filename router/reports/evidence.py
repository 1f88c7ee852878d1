"""Evidence: the chain behind each placement, and a self-contained bundle verifiable offline.

A placement's chain runs lesson@version (with the hash of the published content) → the rule and
rule-set version that placed it → the placement and its handle in the target → every signal
(the sender's delivery id, when, who) → the audit entries that recorded them. A bundle holds the
chains of a period, the compliance matrix, and the contiguous run of audit entries from the
first one it cites to the chain's head, so `verify` can recompute every hash without Cairn.
"""

import re
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from core.adoption import Tier, tier_at
from core.base import utcnow
from core.compliance import Cell, cell_of
from core.lesson import Lesson, content_hash
from core.placement import Placement, Signal
from router.reports.adoption import Assessed, Filters
from router.reports.compliance import ComplianceService
from store import audit, lessons
from store.engine import Database
from store.tables import AuditRow

FORMAT = "cairn.evidence/1"


def _audit_row(row: AuditRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at.isoformat(timespec="microseconds"),
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "details": row.details,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


_ANCHORS = ("lesson.published", "lesson.imported")
"""Audit actions that record a lesson version's content hash."""
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _names(action: str, details: Any, placement_id: str) -> bool:
    """Whether an audit entry is about this placement."""
    if not isinstance(details, dict):
        return False
    if details.get("placement") == placement_id:
        return True
    if action == "placement.embedded":
        return any(
            placement_id in (details.get(key) or ()) for key in ("embedded", "removed", "failed")
        )
    return action in _ANCHORS


def _cites(row: AuditRow, placement_id: str) -> bool:
    return _names(row.action, row.details, placement_id)


class EvidenceService:
    """Chains per placement, bundles per period."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def chains(self, assessed: list[Assessed]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Each placement's chain, and the lesson versions they cite (by `id@version`)."""
        cited: dict[str, Any] = {}
        found: list[dict[str, Any]] = []
        with self.db.transaction() as session:
            for item in assessed:
                placement = item.entry.placement
                key = f"{placement.lesson_id}@{placement.lesson_version}"
                if key not in cited:
                    version = lessons.get_version(
                        session, placement.lesson_id, placement.lesson_version
                    )
                    doc = None if version is None else version.model_dump(mode="json")
                    cited[key] = {
                        "content_hash": None if doc is None else content_hash(doc),
                        "lesson": doc,
                    }
                rows = list(
                    session.scalars(
                        select(AuditRow)
                        .where(AuditRow.subject == placement.work_item_ref)
                        .order_by(AuditRow.seq)
                    )
                )
                rows += [
                    row
                    for row in session.scalars(
                        select(AuditRow)
                        .where(AuditRow.subject == placement.lesson_id)
                        .where(AuditRow.action.in_(_ANCHORS))
                        .order_by(AuditRow.seq)
                    )
                    if isinstance(row.details, dict)
                    and row.details.get("version") == placement.lesson_version
                ]
                found.append(
                    {
                        "lesson": key,
                        "content_hash": cited[key]["content_hash"],
                        "rule": placement.rule_id,
                        "rule_set_version": placement.rule_set_version,
                        "placement": item.as_dict(),
                        "handle": placement.handle,
                        "signals": [
                            {
                                "kind": s.kind.value,
                                "at": s.at.isoformat(),
                                "delivery_id": s.delivery_id,
                                "actor": s.actor,
                                "reason": s.reason,
                            }
                            for s in item.entry.signals
                        ],
                        "audit_seqs": [r.seq for r in rows if _cites(r, placement.id)],
                    }
                )
        return found, cited

    def bundle(self, filters: Filters, now: datetime | None = None) -> dict[str, Any]:
        """Everything an auditor needs for the period, in one JSON document."""
        now = now or utcnow()
        matrix = ComplianceService(self.db).matrix(filters, now)
        # The placements behind the matrix's cells: reached, and not waived per work item.
        chains, cited = self.chains(matrix.counted())
        first = min((seq for c in chains for seq in c["audit_seqs"]), default=None)
        with self.db.transaction() as session:
            head = audit.head(session)
            rows = (
                []
                if first is None
                else [
                    _audit_row(r)
                    for r in session.scalars(
                        select(AuditRow).where(AuditRow.seq >= first).order_by(AuditRow.seq)
                    )
                ]
            )
        return {
            "format": FORMAT,
            "generated_at": now.isoformat(),
            "period": {
                "from": None if filters.since is None else filters.since.isoformat(),
                "until": None if filters.until is None else filters.until.isoformat(),
            },
            "head": {"seq": head.seq, "hash": head.hash},
            "matrix": matrix.as_dict(),
            "lessons": cited,
            "placements": chains,
            "audit": rows,
        }


def verify_bundle(bundle: dict[str, Any]) -> list[str]:
    """Every problem found in a bundle (empty when it verifies), without any database.

    Checked: each lesson version's content against the hash its publication recorded in the
    audit log; the audit entries' own hashes, their sequence and the head they end at; that each
    placement chain cites entries that name it (its planning at least) and that every signal it
    shows was recorded there with the same kind and delivery id; each tier, recomputed from the
    signals; each matrix cell, recomputed from its placements' tiers.
    """
    if bundle.get("format") != FORMAT:
        return [f"not an evidence bundle (format {bundle.get('format')!r}, expected {FORMAT!r})"]
    problems: list[str] = []
    rows = bundle["audit"]
    by_seq = {row["seq"]: row for row in rows}
    problems += _audit_problems(rows, bundle["head"])
    anchors = {
        (row["subject"], row["details"].get("version")): row["details"].get("content_hash")
        for row in rows
        if row["action"] in _ANCHORS and isinstance(row["details"], dict)
    }
    for key, cited in bundle["lessons"].items():
        problems += _lesson_problems(key, cited, anchors)
    tiers: dict[str, str] = {}
    for chain in bundle["placements"]:
        problems += _chain_problems(chain, bundle, by_seq)
        tiers[chain["placement"]["id"]] = chain["placement"]["tier"]
    for cell in bundle["matrix"]["cells"]:
        problems += _cell_problems(cell, tiers)
    return problems


def _audit_problems(rows: list[dict[str, Any]], head: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if not isinstance(head.get("seq"), int) or not _HEX64.match(str(head.get("hash"))):
        problems.append("the bundle's head is not a sequence number and a SHA-256")
    prev: dict[str, Any] | None = None
    for row in rows:
        at = datetime.fromisoformat(row["at"])
        digest = audit.entry_hash(
            row["prev_hash"],
            row["seq"],
            at,
            row["actor"],
            row["action"],
            row["subject"],
            row["details"],
        )
        if digest != row["hash"]:
            problems.append(f"audit seq {row['seq']}: its content does not match its hash")
        if prev is not None and (row["seq"] != prev["seq"] + 1 or row["prev_hash"] != prev["hash"]):
            problems.append(f"audit seq {row['seq']}: does not follow seq {prev['seq']}")
        prev = row
    if prev is not None and (prev["seq"], prev["hash"]) != (head.get("seq"), head.get("hash")):
        problems.append("the audit entries do not end at the bundle's head")
    return problems


def _lesson_problems(
    key: str, cited: dict[str, Any], anchors: dict[tuple[str, Any], Any]
) -> list[str]:
    doc = cited.get("lesson")
    if not isinstance(doc, dict):
        return [f"lesson {key}: no published content in the bundle"]
    try:
        lesson = Lesson.model_validate(doc, strict=False)
    except ValidationError as exc:
        return [f"lesson {key}: not a lesson ({exc.error_count()} errors)"]
    if key != f"{lesson.id}@{lesson.version}":
        return [f"lesson {key}: the content is {lesson.id}@{lesson.version}"]
    found = content_hash(doc)
    if found != cited.get("content_hash"):
        return [f"lesson {key}: its content does not match its hash"]
    recorded = anchors.get((lesson.id, lesson.version))
    if recorded is None:
        return [f"lesson {key}: no publication in the audit entries records its content hash"]
    if recorded != found:
        return [f"lesson {key}: its content differs from what was published (audit log)"]
    return []


def _chain_problems(
    chain: dict[str, Any], bundle: dict[str, Any], by_seq: dict[int, dict[str, Any]]
) -> list[str]:
    record = chain["placement"]
    pid = record["id"]
    where = f"placement {pid}"
    problems: list[str] = []
    if chain["lesson"] not in bundle["lessons"]:
        problems.append(f"{where}: cites lesson {chain['lesson']} not in the bundle")
    elif chain["content_hash"] != bundle["lessons"][chain["lesson"]]["content_hash"]:
        problems.append(f"{where}: lesson hash differs from the bundle's lesson")
    missing = [seq for seq in chain["audit_seqs"] if seq not in by_seq]
    if missing:
        problems.append(f"{where}: audit entries {missing} are not in the bundle")
    cited = [by_seq[seq] for seq in chain["audit_seqs"] if seq in by_seq]
    if not any(
        r["action"] == "placement.planned" and _names(r["action"], r["details"], pid) for r in cited
    ):
        problems.append(f"{where}: cites no audit entry recording its planning")
    strangers = [r["seq"] for r in cited if not _names(r["action"], r["details"], pid)]
    if strangers:
        problems.append(f"{where}: cites audit entries {strangers} that do not name it")
    recorded = {
        (r["action"].removeprefix("signal."), r["details"].get("delivery"))
        for r in cited
        if r["action"].startswith("signal.") and isinstance(r["details"], dict)
    }
    for signal in chain["signals"]:
        if (signal["kind"], signal["delivery_id"]) not in recorded:
            problems.append(
                f"{where}: signal {signal['kind']} ({signal['delivery_id']}) "
                "is not in the audit log"
            )
    fields = set(Placement.model_fields)
    placement = Placement.model_validate(
        {k: v for k, v in record.items() if k in fields}, strict=False
    )
    signals = [
        Signal.model_validate({**s, "id": f"s{n}", "placement_id": pid}, strict=False)
        for n, s in enumerate(chain["signals"])
    ]
    generated = datetime.fromisoformat(bundle["generated_at"])
    tier = tier_at(placement, signals, generated)
    if tier is None or tier.value != record["tier"]:
        problems.append(f"{where}: its signals make it {tier}, not {record['tier']}")
    return problems


def _cell_problems(cell: dict[str, Any], tiers: dict[str, str]) -> list[str]:
    where = f"cell {cell['lesson']} x {cell['team']}"
    missing = [pid for pid in cell["placements"] if pid not in tiers]
    if missing:
        return [f"{where}: placements {missing} have no chain in the bundle"]
    if cell["cell"] == Cell.WAIVED.value:
        return []
    expected = cell_of([Tier(tiers[pid]) for pid in cell["placements"]], waived=False)
    if expected.value != cell["cell"]:
        return [f"{where}: its placements make it {expected.value}, not {cell['cell']}"]
    return []
