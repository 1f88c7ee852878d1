"""Evidence: the chain behind each placement, and a self-contained bundle verifiable offline.

A placement's chain runs lesson@version (with the hash of the published content) → the rule and
rule-set version that placed it → the placement and its handle in the target → every signal
(the sender's delivery id, when, who) → the audit entries that recorded them. A bundle holds the
chains of a period, the compliance matrix, and the contiguous run of audit entries from the
first one it cites to the chain's head, so `verify` can recompute every hash without Cairn.
"""

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from core.base import utcnow
from core.lesson import Lesson
from router.reports.adoption import Assessed, Filters, ReportService
from router.reports.compliance import ComplianceService
from store import audit, lessons
from store.engine import Database
from store.tables import AuditRow

FORMAT = "cairn.evidence/1"


def content_hash(lesson: dict[str, Any]) -> str:
    """SHA-256 of a lesson version's canonical JSON."""
    canonical = json.dumps(lesson, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


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


def _cites(row: AuditRow, placement_id: str) -> bool:
    details = row.details if isinstance(row.details, dict) else {}
    return details.get("placement") == placement_id or row.action == "placement.embedded"


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
                rows = session.scalars(
                    select(AuditRow)
                    .where(AuditRow.subject == placement.work_item_ref)
                    .order_by(AuditRow.seq)
                )
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
        assessed = (
            ReportService(self.db).assessed(filters.of_lessons(matrix.lessons), now)
            if matrix.lessons
            else []
        )
        # The placements behind the matrix's cells: reached, and not waived per work item.
        cited_ids = {pid for cell in matrix.cells.values() for pid in cell.placements}
        chains, cited = self.chains([a for a in assessed if a.entry.placement.id in cited_ids])
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
    """Every problem found in a bundle (empty when it verifies), without any database."""
    problems: list[str] = []
    if bundle.get("format") != FORMAT:
        return [f"not an evidence bundle (format {bundle.get('format')!r}, expected {FORMAT!r})"]
    for key, cited in bundle.get("lessons", {}).items():
        doc = cited.get("lesson")
        if doc is None:
            problems.append(f"lesson {key}: no published content in the bundle")
        elif content_hash(doc) != cited.get("content_hash"):
            problems.append(f"lesson {key}: its content does not match its hash")
        else:
            try:
                Lesson.model_validate(doc, strict=False)
            except ValidationError as exc:
                problems.append(f"lesson {key}: not a lesson ({exc.error_count()} errors)")
    rows = bundle.get("audit", [])
    seqs = {row["seq"] for row in rows}
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
    head = bundle.get("head", {})
    if prev is not None and (prev["seq"], prev["hash"]) != (head.get("seq"), head.get("hash")):
        problems.append("the audit entries do not end at the bundle's head")
    for chain in bundle.get("placements", []):
        pid = chain["placement"]["id"]
        if chain["lesson"] not in bundle.get("lessons", {}):
            problems.append(f"placement {pid}: cites lesson {chain['lesson']} not in the bundle")
        elif chain["content_hash"] != bundle["lessons"][chain["lesson"]]["content_hash"]:
            problems.append(f"placement {pid}: lesson hash differs from the bundle's lesson")
        missing = [seq for seq in chain["audit_seqs"] if seq not in seqs]
        if missing:
            problems.append(f"placement {pid}: audit entries {missing} are not in the bundle")
    return problems
