"""Mandated placements past their due date with the item still open become `overdue`; the PR or
ticket gets a reminder, and the lesson's owner team a digest.

A background task (in `cairn serve` with workers, and in `cairn worker`) sweeps every
CAIRN_OVERDUE_SWEEP_SECONDS; each change is audited (`placement.overdue`) in the transaction
that makes it. A tick afterwards completes the placement as usual; an untick puts it back in the
work, and the next sweep finds it overdue again.

Reminders: in the same transaction the sweep queues a `remind` message for each work item, of a
target that can post reminders, with an overdue placement never reminded or not reminded within
CAIRN_REMINDER_WINDOW_HOURS (0 turns them off), unless one is queued already (or dead-lettered,
which waits for an operator). The remind stage (`router.stages.remind`) posts the comment
through the outbox like the embeds: retried, and de-duplicated by an effect key per placement
and window that the target reads back before posting. It sets `reminded_at` and audits
`placement.reminded`.

Digests: with CAIRN_DIGEST_WEBHOOK_URL set, each sweep ends by POSTing, to every owner team with
placements marked overdue, its digest (`digest`), signed with Standard Webhooks
(CAIRN_DIGEST_WEBHOOK_SECRET) and retried (tenacity), at most once per
CAIRN_DIGEST_INTERVAL_HOURS. The owner's interval is claimed in the database before the POST
(so two workers never both send it) and given back when delivery fails, so the next sweep tries
again; a crash between the claim and the POST skips that interval. Each digest sent is audited
(`overdue.digest`).
"""

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from connectors.target import Reminding, Target
from connectors.webhook_sender import WebhookSender
from core.base import utcnow
from core.errors import CairnError
from core.feedback import MANDATED
from core.overdue import OverdueDigest
from core.placement import PlacementState
from core.work import System
from router.periodic import Periodic
from router.pipeline import REMIND_TOPIC
from router.settings import Settings
from store import audit, outbox, placements, tallies
from store import overdue as overdue_store
from store.engine import Database

log = logging.getLogger("cairn.overdue")
ACTOR = "cairn:overdue"
DIGEST_TYPE = "overdue.digest"
"""The `type` of the digest webhook's body (`{"type", "timestamp", "data"}`)."""


@dataclass(frozen=True, slots=True)
class Reminders:
    """When to queue reminders: the window, and the systems whose targets can post them."""

    window: timedelta
    systems: frozenset[System]


@dataclass(frozen=True, slots=True)
class Digests:
    """Where owners' digests go, and how often each owner gets one at most."""

    sender: WebhookSender
    interval: timedelta


def sweep(db: Database, now: datetime | None = None, *, reminders: Reminders | None = None) -> int:
    """Mark every mandated, embedded placement whose due date has passed, and queue the
    reminders that are due; returns how many placements became overdue."""
    now = now or utcnow()
    marked = 0
    with db.transaction() as session:
        for placement in placements.in_state(session, PlacementState.EMBEDDED):
            due = placement.due_at
            if placement.mandate not in MANDATED or due is None or due > now:
                continue
            placements.update(
                session,
                placement.model_copy(update={"state": PlacementState.OVERDUE, "updated_at": now}),
            )
            audit.record(
                session,
                actor=ACTOR,
                action="placement.overdue",
                subject=placement.work_item_ref,
                details={
                    "placement": placement.id,
                    "lesson": f"{placement.lesson_id}@{placement.lesson_version}",
                    "due_at": due.isoformat(),
                    "mandate": placement.mandate.value,
                },
                now=now,
            )
            marked += 1
        if reminders is not None:
            prefixes = [f"{system.value}:" for system in reminders.systems]
            refs = overdue_store.due_for_reminder(
                session, now, reminders.window, prefixes, REMIND_TOPIC
            )
            queued_at = utcnow()  # due for the workers now, whatever time `now` judges by
            for ref in refs:
                payload = {"ref": ref}
                outbox.enqueue(session, topic=REMIND_TOPIC, payload=payload, key=ref, now=queued_at)
            if refs:
                log.info("reminders queued for %d work items", len(refs))
    return marked


def digest(db: Database, owner: str, now: datetime | None = None) -> OverdueDigest:
    """The overdue placements of the lessons `owner` owns (the report and the pushed digest)."""
    with db.transaction() as session:
        return overdue_store.digest(session, owner, now or utcnow())


def _message_id(owner: str, at: datetime) -> str:
    return "msg_" + hashlib.sha256(f"{owner}\n{at.isoformat()}".encode()).hexdigest()[:32]


def _deliver(sender: WebhookSender, msg_id: str, found: OverdueDigest) -> bool:
    body = {
        "type": DIGEST_TYPE,
        "timestamp": found.generated_at.isoformat(),
        "data": found.model_dump(mode="json"),
    }
    try:
        sender.post(msg_id, body)
    except CairnError as exc:
        log.warning("overdue digest for %s not delivered: %s", found.owner, exc)
        return False
    return True


def push_digests(db: Database, digests: Digests, now: datetime | None = None) -> int:
    """POST each owner's digest that is due; returns how many were delivered."""
    now = now or utcnow()
    with db.transaction() as session:
        teams = overdue_store.owners(session)
    sent = 0
    for owner in teams:
        with db.transaction() as session:
            claim = overdue_store.claim_digest(session, owner, now, digests.interval)
            found = None if claim is None else overdue_store.digest(session, owner, now)
        if claim is None or found is None:
            continue
        msg_id = _message_id(owner, now)
        if not (found.items and _deliver(digests.sender, msg_id, found)):
            with db.transaction() as session:
                overdue_store.release_digest(session, claim)
            continue
        with db.transaction() as session:
            audit.record(
                session,
                actor=ACTOR,
                action="overdue.digest",
                subject=f"owner:{owner}",
                details={
                    "webhook_id": msg_id,
                    "placements": [item.placement_id for item in found.items],
                },
                now=now,
            )
        sent += 1
    return sent


class OverdueSweeper:
    """A background task calling `sweep` (and `push_digests`, when configured) every
    `interval` seconds."""

    def __init__(
        self,
        db: Database,
        interval: float,
        *,
        reminders: Reminders | None = None,
        digests: Digests | None = None,
    ) -> None:
        self.db = db
        self.reminders = reminders
        self.digests = digests
        self._loop = Periodic("overdue-sweep", interval, self._sweep)

    @classmethod
    def configured(
        cls, db: Database, settings: Settings, targets: Mapping[System, Target]
    ) -> "OverdueSweeper":
        """The sweeper the settings describe, reminding through the targets that can."""
        systems = frozenset(s for s, target in targets.items() if isinstance(target, Reminding))
        digests = None
        secret = settings.digest_webhook_secret
        if settings.digest_webhook_url and secret is not None:
            sender = WebhookSender(
                settings.digest_webhook_url,
                secret.get_secret_value(),
                setting="CAIRN_DIGEST_WEBHOOK_SECRET",
            )
            digests = Digests(sender, timedelta(hours=settings.digest_interval_hours))
        return cls(
            db,
            settings.overdue_sweep_seconds,
            reminders=Reminders(settings.reminder_window, systems),
            digests=digests,
        )

    async def start(self) -> None:
        """Start sweeping."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop sweeping."""
        await self._loop.stop()

    def _sweep(self) -> None:
        marked = sweep(self.db, reminders=self.reminders)
        if marked:
            log.info("%d placements became overdue", marked)
        if self.digests is not None:
            sent = push_digests(self.db, self.digests)
            if sent:
                log.info("%d overdue digests delivered", sent)
        # The same sweep keeps the report tallies small: it folds their appended deltas.
        with self.db.transaction() as session:
            tallies.compact(session)
