"""Stage `observe`: record what an event shows about placed items, re-reading when it is thin.

Keyed by the work item, so observations of one work item are applied one at a time, in order.
Cairn's own edits coming back never get here: the inbound stage drops them. On a target with a
merge check (a GitHub App), the check is brought in line with the marks in the same keyed
message: a tick, a justified dismissal or a new waiver turns it green without waiting for the
next placement. A template pull request closed unmerged dismisses its items with the comment
the person who closed it wrote (GitHub's "Close with comment") as the reason, read before the
dismissals are recorded; without one the webhook's fixed reason stands.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from connectors.target import ClosingReasons, EmbedEntry, GateResult, Gating, Target
from core.errors import PayloadError
from core.feedback import Closure, ItemMark, ItemObservation, Observation
from core.work import System, WorkItem
from router.pipeline import Effect, StageContext
from router.stages import feedback
from router.stages.embed import shown_entries
from router.stages.gating import Gates, annotate, default_gates
from store import audit, work_items

TOPIC = "observe"
log = logging.getLogger("cairn.observe")
ACTOR = "cairn:gate"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class Plan:
    """What to re-read, the event that asked for it, and the check's entries when it gates."""

    target: Target
    item: WorkItem
    observation: Observation
    reread: bool = True
    """False: the event showed the items and they are recorded already."""
    gated: tuple[EmbedEntry, ...] | None = None
    """The entries the merge check weighs; None: no check to bring in line."""
    reason_via: str | None = None
    """The pull request whose closing comment gives the dismissals their reason."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the re-read showed (None: not re-read) and what the check call did."""

    items: tuple[ItemObservation, ...] | None
    gate: GateResult | None
    reason: str | None = None
    """The closing comment read from `Plan.reason_via`."""


def make_stage(
    targets: Mapping[System, Target],
    public_url: str = DEFAULT_PUBLIC_URL,
    gates: Gates = default_gates,
) -> Effect:
    """The observe stage, bound to the configured targets; `gates` gives each rule's merge
    gate, `public_url` the lesson links of the check's summary."""

    def prepare(ctx: StageContext, payload: dict[str, Any]) -> Plan | None:
        try:
            observation = Observation.model_validate(payload.get("observation"), strict=False)
        except ValidationError as exc:
            raise PayloadError(f"observe message with an invalid observation: {exc}") from exc
        item = work_items.get(ctx.session, observation.work_item_ref)
        if item is None:
            return None
        target = targets.get(item.system)
        if (
            observation.via is not None
            and observation.closure == Closure.CLOSED
            and observation.items
            and isinstance(target, ClosingReasons)
        ):
            return Plan(target, item, observation, reread=False, reason_via=observation.via)
        gated = _gated(ctx, target, item, observation)
        if observation.items is not None or target is None:
            # The event showed the items (or there is nothing to re-read): record it now.
            feedback.apply(ctx.session, observation, ctx.now)
            if target is None or gated is None:
                return None
            return Plan(target, item, observation, reread=False, gated=gated)
        return Plan(target, item, observation, gated=gated)

    def _gated(
        ctx: StageContext, target: Target | None, item: WorkItem, observation: Observation
    ) -> tuple[EmbedEntry, ...] | None:
        if not (isinstance(target, Gating) and target.gating) or observation.closure:
            return None  # no check, or the pull request has ended: its check no longer gates
        entries = shown_entries(ctx, item.ref, public_url)
        return annotate(ctx.session, item, entries, gates, ctx.now) if entries else None

    def perform(plan: Plan) -> Outcome:
        if plan.reason_via is not None and isinstance(plan.target, ClosingReasons):
            observed = plan.observation
            try:
                reason = plan.target.closing_reason(
                    plan.reason_via, observed.actor, observed.observed_at
                )
            except Exception as exc:
                # The dismissals matter more than their wording: whatever kept the comment
                # from being read, record them with the fixed reason rather than risk them.
                log.warning(
                    "closing comment of %s not read (%s); the fixed reason stands",
                    plan.reason_via,
                    type(exc).__name__,
                )
                reason = None
            return Outcome(None, None, reason)
        items = plan.target.observe(plan.item) if plan.reread else None
        gate = None
        if plan.gated is not None and isinstance(plan.target, Gating):
            gate = plan.target.gate(plan.item, plan.gated)
        return Outcome(items, gate)

    def record(ctx: StageContext, plan: Plan, outcome: Outcome) -> None:
        if plan.reason_via is not None:
            feedback.apply(ctx.session, _with_reason(plan.observation, outcome.reason), ctx.now)
            return
        if outcome.items is not None:
            observed = plan.observation.model_copy(update={"items": outcome.items})
            feedback.apply(ctx.session, observed, ctx.now)
        if outcome.gate is not None and outcome.gate.written:
            audit.record(
                ctx.session,
                actor=ACTOR,
                action="check.updated",
                subject=plan.item.ref,
                details={
                    "conclusion": outcome.gate.conclusion,
                    "writes": outcome.gate.writes,
                    "reads": outcome.gate.reads,
                },
                now=ctx.now,
            )

    return Effect(prepare=prepare, perform=perform, record=record)


def _with_reason(observation: Observation, reason: str | None) -> Observation:
    """The observation with `reason` on its dismissed items (unchanged when None)."""
    if reason is None or observation.items is None:
        return observation
    items = tuple(
        i.model_copy(update={"reason": reason}) if i.mark == ItemMark.DISMISSED else i
        for i in observation.items
    )
    return observation.model_copy(update={"items": items})
