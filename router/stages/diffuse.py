"""Stage `diffuse`: a published lesson placed in the pull-request templates its rules select.

Lesson-driven, beside the work-driven `route`: `publish` enqueues `{lesson, version}` in its
transaction. For each rule in force with `then.form: github.pr_template` whose lesson condition
selects the lesson (`rules.reference.lesson_failure`), each GitHub repository Cairn knows (the
projects of its stored GitHub work items) that the rule's `work_item.projects` globs match gets
a planned placement on its template work item (`connectors.github.template`); among several
such rules for one repository the one routing would pick wins (`rules.select.winner`). Then one
`embed` per template, keyed by its ref, so every write to one repository's template PR is
serialised. A lesson already placed in a template (any version: revisions reach it through the
`revision` flow) is not placed again, so a redelivered message plans nothing.
"""

import logging
from typing import Any

from sqlalchemy import select

from connectors.github import template
from core.errors import PayloadError
from core.lesson import LessonStatus
from core.placement import EmbeddingForm, Placement
from core.work import System
from router.pipeline import Stage, StageContext
from router.ruleset.active import ActiveRules
from router.stages.route import EMBED_TOPIC, planned_placement
from rules.decision import Candidate, decide
from rules.globs import normalise
from rules.reference import lesson_failure
from rules.select import winner
from store import audit, lessons, placements, work_items
from store.tables import WorkItemRow

TOPIC = "diffuse"
ACTOR = "cairn:diffuser"
log = logging.getLogger("cairn.diffuse")


def repositories(ctx: StageContext) -> list[str]:
    """Every GitHub repository Cairn knows: the projects of its stored GitHub work items."""
    rows = ctx.session.execute(
        select(WorkItemRow.project).where(WorkItemRow.system == System.GITHUB.value).distinct()
    )
    return sorted(str(project) for (project,) in rows)


def _matches(patterns: tuple[str, ...], repo: str) -> bool:
    from wcmatch.glob import BRACE, DOTGLOB, GLOBSTAR, globmatch

    flags = GLOBSTAR | DOTGLOB | BRACE  # as `rules.globs` and `rules.reference` match
    return not patterns or any(globmatch(normalise(repo), p, flags=flags) for p in patterns)


def make_handler(active: ActiveRules) -> Stage:
    """The diffuse stage, bound to the rule set in force."""

    def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
        lesson_id, version = payload.get("lesson"), payload.get("version")
        if not isinstance(lesson_id, str) or not isinstance(version, int):
            raise PayloadError("diffuse message without a lesson and version")
        current = lessons.get(ctx.session, lesson_id)
        if current is None or current.status != LessonStatus.PUBLISHED:
            return  # retired (or gone) since: nothing to place
        if current.version != version:
            return  # a newer version was published: its own message places it
        lesson = lessons.get_version(ctx.session, lesson_id, version) or current
        rule_set = active.rule_set
        if rule_set is None:
            return
        candidates: list[Candidate] = []
        order = 0
        for pack in rule_set.packs:
            for rule in pack.rules:
                order += 1
                if rule.then.form != EmbeddingForm.GITHUB_PR_TEMPLATE:
                    continue
                if rule.work_item.systems and System.GITHUB not in rule.work_item.systems:
                    continue
                if lesson_failure(rule, lesson) is None:
                    candidates.append(Candidate(rule, pack, order))
        if not candidates:
            return
        planned: list[Placement] = []
        for repo in repositories(ctx):
            best, _reason = winner(
                lesson, [c for c in candidates if _matches(c.rule.work_item.projects, repo)]
            )
            if best is None:
                continue
            item = template.work_item(repo)
            if any(
                p.lesson_id == lesson_id for p in placements.for_work_item(ctx.session, item.ref)
            ):
                continue
            work_items.record_if_changed(ctx.session, item, ctx.now)
            decision = decide(lesson, best, rule_set.version)
            text = decision.text(lesson, item, best.rule)
            placement = planned_placement(decision, item.ref, text, ctx.now)
            planned.append(placement.model_copy(update={"due_at": None}))
        if not planned:
            return
        placements.add_many(ctx.session, planned)
        refs = sorted({p.work_item_ref for p in planned})
        audit.record(
            ctx.session,
            actor=ACTOR,
            action="placement.diffused",
            subject=lesson_id,
            details={"version": version, "templates": refs},
            now=ctx.now,
        )
        for ref in refs:
            ctx.emit(EMBED_TOPIC, {"ref": ref}, key=ref)

    return handle
