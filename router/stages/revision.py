"""A newer published version of a placed lesson, applied to a work item's open placements.

`publish` enqueues one `embed` message per affected work item with `revision: {lesson, version}`
in the same transaction; the embed stage applies it here before it builds the entries, so the
target rewrites the items in the same serialised call that keeps their marks. Each placement's
rule chooses (`on_revision`): `update` takes the new version's text (the item shows "updated to
vN"), `keep` leaves it as placed, `replace_and_reopen` also puts a ticked required item back to
open with the reason. Applying twice changes nothing: a placement already at the version is
left alone, and the target reads before it writes. Training assignments are not revised: the
learner stays enrolled in the module the placed version named (see `connectors.lms_target`).
"""

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from core.lesson import Lesson, Mandate
from core.placement import EmbeddingForm, Placement, PlacementState
from core.work import WorkItem
from router.ruleset.active import ActiveRules
from rules import template
from rules.decision import template_variables
from rules.model import OnRevision, Rule
from store import audit, lessons, placements

ACTOR = "cairn:reviser"
REVISABLE = frozenset(
    {
        PlacementState.PLANNED,
        PlacementState.EMBEDDED,
        PlacementState.OVERDUE,
        PlacementState.COMPLETED,
    }
)
"""Placements whose item is still in front of people: open ones, and ticked ones (the tick is
kept, or reopened). Dismissed, withdrawn and failed ones keep the version they had."""

Rules = Callable[[str], Rule | None]
"""Pack-qualified rule id (`pack/rule`, as placements record it) → the rule in force, if any."""


def no_rules(_rule_id: str) -> Rule | None:
    """No rule set configured: every placement takes the default, `update`."""
    return None


def rules_of(active: ActiveRules) -> Rules:
    """The rule in force for a placement's rule id when asked (None: no longer in the set)."""

    def find(rule_id: str) -> Rule | None:
        rule_set = active.rule_set
        if rule_set is None:
            return None
        pack_name, _, rule_name = rule_id.partition("/")
        for pack in rule_set.packs:
            if pack.pack == pack_name:
                for rule in pack.rules:
                    if rule.id == rule_name:
                        return rule
        return None

    return find


def reaches(placement: Placement) -> bool:
    """Whether a revision can change the placement's item (its state and form allow it)."""
    return placement.state in REVISABLE and placement.form != EmbeddingForm.LMS_ASSIGNMENT


def reopen_reason(lesson: Lesson) -> str:
    """What the reopened item says: the version and why it changed (the review notes)."""
    why = lesson.review.notes.strip() if lesson.review is not None else ""
    because = f" because {why}" if why else ""
    return f"lesson revised to v{lesson.version}{because}"


def revised(
    placement: Placement, lesson: Lesson, item: WorkItem, rule: Rule | None, now: datetime
) -> Placement | None:
    """`placement` showing `lesson` (a newer version) as its rule says; None: left as it is."""
    policy = OnRevision.UPDATE if rule is None else rule.on_revision
    if policy == OnRevision.KEEP or not reaches(placement):
        return None  # an enrolment stays in the module it was made in (connectors/lms_target)
    if placement.lesson_version >= lesson.version:
        return None
    text = (
        ""
        if rule is None
        else template.render(rule.then.text, template_variables(lesson, item, rule))
    )
    update: dict[str, object] = {
        "lesson_version": lesson.version,
        "placed_version": placement.placed_version or placement.lesson_version,
        "text": text,
        "reopened": None,
        "updated_at": now,
    }
    reopen = (
        policy == OnRevision.REPLACE_AND_REOPEN
        and placement.state == PlacementState.COMPLETED
        and placement.mandate == Mandate.REQUIRED
    )
    if reopen:
        update["state"] = PlacementState.EMBEDDED
        update["reopened"] = reopen_reason(lesson)
    return placement.model_copy(update=update)


def apply(
    session: Session,
    item: WorkItem,
    lesson_id: str,
    version: int,
    rules: Rules,
    now: datetime,
) -> list[str]:
    """Bring the work item's placements of `lesson_id` to `version` as their rules say; the ids
    changed (none when already applied, or every rule says `keep`)."""
    lesson = lessons.get_version(session, lesson_id, version)
    if lesson is None:
        return []
    changed: list[str] = []
    reopened: list[str] = []
    mine = [p for p in placements.for_work_item(session, item.ref) if p.lesson_id == lesson_id]
    # A template outlives its merged pull request: its items are always revised.
    done = placements.finished(
        session, [p.id for p in mine if p.form != EmbeddingForm.GITHUB_PR_TEMPLATE]
    )
    for placement in mine:
        if placement.id in done:
            continue  # merged or resolved work: its items stay as they were
        after = revised(placement, lesson, item, rules(placement.rule_id), now)
        if after is None:
            continue
        placements.update(session, after)
        changed.append(after.id)
        if after.reopened is not None:
            reopened.append(after.id)
    if changed:
        audit.record(
            session,
            actor=ACTOR,
            action="placement.revised",
            subject=item.ref,
            details={
                "lesson": lesson_id,
                "version": version,
                "updated": changed,
                "reopened": reopened,
            },
            now=now,
        )
    return changed
