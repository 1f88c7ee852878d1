"""Stage `diffuse`: a published lesson placed in the pull-request templates its rules select.

Lesson-driven, beside the work-driven `route`: `publish` enqueues `{lesson, version}` in its
transaction. For each rule in force with `then.form: github.pr_template` whose lesson condition
selects the lesson (`rules.reference.lesson_failure`), each GitHub repository Cairn knows (the
projects of its stored GitHub work items) that the rule's `work_item.projects` globs match gets
a planned placement on its template work item (`connectors.github.template`); among several
such rules for one repository the one routing would pick wins (`rules.select.winner`), and a
repository-wide opt-out (a `suppress` rule naming at most systems and repositories) wins the
same way it does in routing. A lesson whose applicability rules the repository out (its
`repos`, `services` or exclusions, or any field a whole repository cannot meet, such as
`paths`) is not placed there. Then one
`embed` per template, keyed by its ref, so every write to one repository's template PR is
serialised. A lesson already placed in a template (any version: revisions reach it through the
`revision` flow) is not placed again, so a redelivered message plans nothing.

A change of the template rules (a rule added, or its lesson or repository conditions edited)
is diffusion too: `TemplateRulesWatch`, told of every rule set the reloader holds, enqueues one
`{rules: digest}` message when the template rules differ from those last diffused (a cursor in
the database, so one of many processes enqueues it, once), and that message places every
published lesson the new rules select that is not in the template yet. So does the first work
item of a repository Cairn had not seen: `inbound` enqueues `{repository}` and the published
lessons the template rules select for it are placed there.
"""

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.github import template
from core.base import utcnow
from core.errors import PayloadError, TransientError
from core.lesson import Lesson, LessonStatus
from core.placement import EmbeddingForm, Placement
from core.work import System
from router.pipeline import Stage, StageContext
from router.ruleset.active import ActiveRules
from router.stages.route import EMBED_TOPIC, planned_placement
from rules.decision import Candidate, decide
from rules.globs import normalise
from rules.loader import RuleSet
from rules.model import Level, Rule
from rules.reference import applicability_failure, glob_any, lesson_failure
from rules.select import winner
from store import audit, cursors, lessons, outbox, placements, work_items
from store.engine import Database
from store.tables import WorkItemRow

TOPIC = "diffuse"
ACTOR = "cairn:diffuser"
CURSOR = "diffuse:template-rules"
"""The digest of the template rules whose selection was last diffused."""
KEY = "diffuse"
"""Every diffusion message shares this key, so they run one at a time, in order: two of them
can never plan the same lesson into the same template side by side."""
RETRY_SECONDS = 5.0
"""How soon a process whose rule files lag behind another's tries a rule change again."""
log = logging.getLogger("cairn.diffuse")


def repositories(ctx: StageContext, listed: Sequence[str] = ()) -> list[str]:
    """Every GitHub repository Cairn knows: the projects of its stored GitHub work items, and
    those `CAIRN_GITHUB_TEMPLATE_REPOSITORIES` lists."""
    rows = ctx.session.execute(
        select(WorkItemRow.project).where(WorkItemRow.system == System.GITHUB.value).distinct()
    )
    return sorted({str(project) for (project,) in rows} | set(listed))


def _matches(patterns: tuple[str, ...], repo: str) -> bool:
    return not patterns or glob_any(normalise(repo), patterns)


_REPOSITORY_WIDE = frozenset({"systems", "projects"})
"""The work-item conditions a rule may have and still speak for a whole repository."""


def _repository_wide_opt_out(rule: Rule) -> bool:
    """A `suppress` rule whose work-item condition names at most systems and repositories: an
    opt-out of the whole repository, so it keeps lessons out of the template too (one about
    paths, labels or branches speaks of some pull requests, not of the template)."""
    named = {field for field in rule.work_item.model_fields_set if getattr(rule.work_item, field)}
    return rule.then.suppress and named <= _REPOSITORY_WIDE


def _candidates(rule_set: RuleSet) -> list[Candidate]:
    """The rule set's template rules that can apply to GitHub, and its repository-wide opt-outs,
    in routing order (`rules.select.winner` weighs them as routing does)."""
    found: list[Candidate] = []
    order = 0
    for pack in rule_set.packs:
        for rule in pack.rules:
            order += 1
            if pack.level != Level.ORGANISATION:
                continue  # a team pack speaks for its team's work items, not a repository
            if rule.work_item.systems and System.GITHUB not in rule.work_item.systems:
                continue
            if rule.then.form == EmbeddingForm.GITHUB_PR_TEMPLATE or _repository_wide_opt_out(rule):
                found.append(Candidate(rule, pack, order))
    return found


def _places(candidates: Sequence[Candidate]) -> bool:
    """Whether any of the candidates places something (not only opt-outs)."""
    return any(not c.rule.then.suppress for c in candidates)


def template_rules_in_force(active: ActiveRules) -> Callable[[], bool]:
    """Whether the rule set in force has a template rule (worked out once per rule set), so a
    repository's first work item asks for diffusion only when something could be placed."""
    known: dict[str, bool] = {}

    def in_force() -> bool:
        rule_set = active.rule_set
        if rule_set is None:
            return False
        found = known.get(rule_set.version)
        if found is None:
            known.clear()
            found = known[rule_set.version] = _places(_candidates(rule_set))
        return found

    return in_force


def template_rules_digest(rule_set: RuleSet, listed: Sequence[str] = ()) -> str | None:
    """A digest of everything in the template rules that decides what they select and place,
    and of the listed repositories (None: the rule set has no template rule)."""
    candidates = _candidates(rule_set)
    if not _places(candidates):
        return None
    described = [
        [c.pack.pack, c.pack.level, c.pack.team, c.pack.priority, c.rule.model_dump(mode="json")]
        for c in candidates
    ]
    text = json.dumps([described, sorted(listed)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _plan(
    ctx: StageContext,
    lesson: Lesson,
    rule_set: RuleSet,
    candidates: Sequence[Candidate],
    repos: Sequence[str],
    placed: dict[str, set[str]],
) -> list[Placement]:
    """The template placements `lesson` gets: one per repository where a rule selects it and
    it is not in the template yet (`placed`: template ref → lesson ids there, kept current)."""
    selecting = [c for c in candidates if lesson_failure(c.rule, lesson) is None]
    planned: list[Placement] = []
    for repo in repos:
        best, _reason = winner(
            lesson, [c for c in selecting if _matches(c.rule.work_item.projects, repo)]
        )
        if best is None:
            continue
        item = template.work_item(repo)
        there = placed.setdefault(item.ref, set())
        if lesson.id in there:
            continue
        if not best.rule.override_applicability and applicability_failure(lesson, item):
            continue  # its author says it does not transfer to this repository as a whole
        work_items.record_if_changed(ctx.session, item, ctx.now)
        decision = decide(lesson, best, rule_set.version)
        text = decision.text(lesson, item, best.rule)
        placement = planned_placement(decision, item.ref, text, ctx.now)
        planned.append(placement.model_copy(update={"due_at": None}))
        there.add(lesson.id)
    return planned


def _placed(ctx: StageContext, repos: Sequence[str]) -> dict[str, set[str]]:
    """Template ref → the lessons placed in it (any version, any state)."""
    found: dict[str, set[str]] = {}
    for repo in repos:
        ref = template.ref(repo)
        found[ref] = {p.lesson_id for p in placements.for_work_item(ctx.session, ref)}
    return found


def make_handler(active: ActiveRules, listed: Sequence[str] = ()) -> Stage:
    """The diffuse stage, bound to the rule set in force; `listed` repositories are reached
    besides those Cairn has seen."""

    def handle(ctx: StageContext, payload: dict[str, Any]) -> None:
        rule_set = active.rule_set
        if "rules" in payload:
            if rule_set is None or template_rules_digest(rule_set, listed) != payload["rules"]:
                stored = cursors.get(ctx.session, CURSOR) or {}
                if stored.get("digest") == payload["rules"]:
                    # Another process holds newer rules than this one: retry once this one's
                    # reloader has read them too.
                    raise TransientError(
                        "the template rules in force here are older than the change",
                        retry_after=RETRY_SECONDS,
                    )
                return  # the rules changed again since: that change enqueued its own message
            published = lessons.published(ctx.session)
            _place(ctx, published, rule_set, {"rules": payload["rules"]}, listed=listed)
            return
        if "repository" in payload:  # a repository Cairn sees for the first time
            repo = payload["repository"]
            if not isinstance(repo, str):
                raise PayloadError("diffuse message with a repository that is not text")
            if rule_set is not None and _places(_candidates(rule_set)):
                published = lessons.published(ctx.session)
                _place(ctx, published, rule_set, {"repository": repo}, only=repo)
            return
        lesson_id, version = payload.get("lesson"), payload.get("version")
        if not isinstance(lesson_id, str) or not isinstance(version, int):
            raise PayloadError("diffuse message without a lesson and version")
        current = lessons.get(ctx.session, lesson_id)
        if current is None or current.status != LessonStatus.PUBLISHED:
            return  # retired (or gone) since: nothing to place
        if current.version != version:
            return  # a newer version was published: its own message places it
        if rule_set is None:
            return
        lesson = lessons.get_version(ctx.session, lesson_id, version) or current
        why = {"lesson": lesson_id, "version": version}
        _place(ctx, [lesson], rule_set, why, listed=listed)

    return handle


def _place(
    ctx: StageContext,
    published: Sequence[Lesson],
    rule_set: RuleSet,
    why: dict[str, Any],
    only: str | None = None,
    listed: Sequence[str] = (),
) -> None:
    """Plan, record and embed the template placements of `published` in every known repository
    (or `only` that one)."""
    candidates = _candidates(rule_set)
    if not _places(candidates) or not published:
        return
    repos = [only] if only is not None else repositories(ctx, listed)
    placed = _placed(ctx, repos)
    planned: list[Placement] = []
    for lesson in published:
        planned += _plan(ctx, lesson, rule_set, candidates, repos, placed)
    if not planned:
        return
    placements.add_many(ctx.session, planned)
    refs = sorted({p.work_item_ref for p in planned})
    subject = why.get("lesson") or why.get("repository") or f"rule set {rule_set.version}"
    audit.record(
        ctx.session,
        actor=ACTOR,
        action="placement.diffused",
        subject=str(subject),
        details={**why, "templates": refs, "placements": len(planned)},
        now=ctx.now,
    )
    for ref in refs:
        ctx.emit(EMBED_TOPIC, {"ref": ref}, key=ref)


class TemplateRulesWatch:
    """Told of each rule set the reloader holds (at start and at every check): when its template
    rules differ from those last diffused, records their digest and enqueues one `{rules}`
    message, in one transaction, so of many processes one enqueues it, once per change."""

    def __init__(self, db: Database, listed: Sequence[str] = ()) -> None:
        self.db = db
        self.listed = tuple(listed)
        self._seen: tuple[str | None] | None = None
        """The digest last settled in the database (None: not yet)."""

    def __call__(self, rule_set: RuleSet) -> None:
        digest = template_rules_digest(rule_set, self.listed)
        if self._seen is not None and digest == self._seen[0]:
            return
        now = utcnow()
        try:
            with self.db.transaction() as session:
                stored = cursors.get(session, CURSOR)
                # No template rule is recorded too (digest None), so putting one back later
                # is a change that places what was published meanwhile.
                if (stored is None and digest is not None) or (
                    stored is not None and stored.get("digest") != digest
                ):
                    cursors.put(
                        session, CURSOR, {"digest": digest, "rule_set": rule_set.version}, now
                    )
                    if digest is not None:
                        outbox.enqueue(
                            session, topic=TOPIC, payload={"rules": digest}, key=KEY, now=now
                        )
                        log.info("template rules changed (rule set %s)", rule_set.version)
        except IntegrityError:
            return  # another process recorded this change first; the next check sees it
        self._seen = (digest,)
