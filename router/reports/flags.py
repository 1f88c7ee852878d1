"""Revision flags: a rule or lesson whose placements are rarely worth it is flagged for revision.

Precision is verified ÷ (verified + dismissed + ignored) over every placement the rule (or the
lesson) made. Once it has at least `min_outcomes` such outcomes and a precision below
`threshold`, it is flagged; the flag stays until someone clears it (both audited), and a later
evaluation raises it again if nothing improved.
"""

from dataclasses import dataclass
from typing import Any

from core.access import Permission, Principal
from core.base import utcnow
from core.errors import ForbiddenError
from router.reports.adoption import Filters, GroupBy, ReportService
from store import audit, flags
from store.engine import Database
from store.flags import Flag

KINDS = {"rule": GroupBy.RULE, "lesson": GroupBy.LESSON}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When to flag: a precision below `threshold` over at least `min_outcomes` outcomes."""

    threshold: float = 0.3
    min_outcomes: int = 10


class FlagService:
    """Evaluate, list and clear revision flags."""

    def __init__(self, db: Database, thresholds: Thresholds | None = None) -> None:
        self.db = db
        self.thresholds = thresholds or Thresholds()

    def evaluate(self, actor: Principal) -> list[dict[str, Any]]:
        """Measure every rule and lesson; raise flags where the thresholds are crossed."""
        if not actor.can(Permission.OPERATE):
            raise ForbiddenError(f"{actor.id} may not evaluate revision flags")
        reports = ReportService(self.db)
        raised: list[dict[str, Any]] = []
        now = utcnow()
        measured: list[tuple[str, str, dict[str, Any]]] = []
        for kind, by in KINDS.items():
            rows, _ = reports.adoption(by, Filters(), now)
            for row in rows:
                found = row.precision()
                decided = sum(row.tiers[k] for k in ("verified", "dismissed", "ignored"))
                value = found["value"]
                if (
                    decided >= self.thresholds.min_outcomes
                    and isinstance(value, float)
                    and value < self.thresholds.threshold
                ):
                    measured.append((kind, row.group, found))
        with self.db.transaction() as session:
            for kind, subject, found in measured:
                if flags.raise_flag(session, kind, subject, found, now):
                    audit.record_by(session, actor, "flag.raised", f"{kind}:{subject}", found, now)
                    raised.append({"kind": kind, "subject": subject, **found})
        return raised

    def listed(self, *, open_only: bool = False) -> list[Flag]:
        """Flags, newest first."""
        with self.db.transaction() as session:
            return flags.listed(session, open_only=open_only)

    def clear(self, actor: Principal, kind: str, subject: str) -> Flag:
        """Clear a flag once the rule or lesson was revised (or judged fine), audited."""
        if not actor.can(Permission.OPERATE):
            raise ForbiddenError(f"{actor.id} may not clear revision flags")
        with self.db.transaction() as session:
            now = utcnow()
            cleared = flags.clear(session, kind, subject, actor.id, now)
            audit.record_by(session, actor, "flag.cleared", f"{kind}:{subject}", {}, now)
            return cleared
