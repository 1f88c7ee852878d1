"""Feedback to lesson owners: where their lessons were dismissed as not applicable, and why."""

from collections import defaultdict
from datetime import datetime
from typing import Any

from core.adoption import Tier
from core.base import utcnow
from router.reports.adoption import Filters, ReportService
from store import lessons
from store.engine import Database


class FeedbackService:
    """Dismissals grouped by lesson and reason, for the lessons a team owns."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def dismissals(
        self, owner: str | None, filters: Filters, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Per lesson (owned by `owner`, or any): each reason with its count and where it came."""
        with self.db.transaction() as session:
            owned = lessons.owners(session, owner=owner)
        if filters.lessons:
            owned = {k: v for k, v in owned.items() if k in filters.lessons}
        if not owned:
            return []
        found = ReportService(self.db).assessed(
            Filters(
                lessons=sorted(owned),
                teams=filters.teams,
                since=filters.since,
                until=filters.until,
                tiers=[Tier.DISMISSED],
            ),
            now or utcnow(),
        )
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for item in found:
            placement = item.entry.placement
            reason = item.adoption.dismissal_reason or "(no reason given)"
            grouped[placement.lesson_id][reason].append(
                {
                    "placement": placement.id,
                    "lesson_version": placement.lesson_version,
                    "work_item": placement.work_item_ref,
                    "team": item.entry.team,
                    "rule": placement.rule_id,
                    "at": placement.updated_at.isoformat(),
                }
            )
        return [
            {
                "lesson": lesson_id,
                "owner": owned[lesson_id],
                "dismissed": sum(len(where) for where in reasons.values()),
                "reasons": [
                    {"reason": reason, "count": len(where), "where": where}
                    for reason, where in sorted(
                        reasons.items(), key=lambda kv: (-len(kv[1]), kv[0])
                    )
                ],
            }
            for lesson_id, reasons in sorted(grouped.items())
        ]
