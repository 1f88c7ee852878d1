"""What routing produces: one Decision per lesson to place, and why others were not placed."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from core.lesson import Lesson, Mandate
from core.placement import EmbeddingForm
from core.work import WorkItem
from rules import template
from rules.model import Audience, Level, Pack, Rule

MANDATE_ORDER = {Mandate.REQUIRED: 0, Mandate.REVIEW_AND_JUSTIFY: 1, Mandate.INVITED: 2}
"""Strongest first."""


def stricter(a: Mandate, b: Mandate) -> Mandate:
    """The more binding of two mandates."""
    return a if MANDATE_ORDER[a] <= MANDATE_ORDER[b] else b


@dataclass(frozen=True, slots=True)
class Candidate:
    """A rule that selects a lesson for a work item, before precedence and budget."""

    rule: Rule
    pack: Pack
    order: int

    @property
    def rule_id(self) -> str:
        """Pack-qualified rule id, as recorded on placements."""
        return f"{self.pack.pack}/{self.rule.id}"

    @property
    def priority(self) -> int:
        """The rule's priority, else its pack's."""
        return self.pack.priority if self.rule.priority is None else self.rule.priority

    @property
    def precedence(self) -> tuple[int, int, int]:
        """Higher wins: priority, then team packs over organisation packs, then file order."""
        return (self.priority, 1 if self.pack.level == Level.TEAM else 0, -self.order)


@dataclass(frozen=True, slots=True)
class Decision:
    """Place lesson@version in the work item, as the winning rule says."""

    lesson_id: str
    lesson_version: int
    rule_id: str
    rule_set_version: str
    form: EmbeddingForm
    mandate: Mandate
    due_in: timedelta | None
    audience: Audience
    priority: int
    severity_rank: int
    text_template: str

    def text(self, lesson: Lesson, work_item: WorkItem, rule: Rule) -> str:
        """Render the item text (done when embedding, not while deciding)."""
        return template.render(self.text_template, template_variables(lesson, work_item, rule))


@dataclass(frozen=True, slots=True)
class Skipped:
    """A lesson not placed, and the reason."""

    lesson_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Routing:
    """The outcome for one work item."""

    placements: tuple[Decision, ...]
    skipped: tuple[Skipped, ...] = ()


def decide(lesson: Lesson, winner: Candidate, rule_set_version: str) -> Decision:
    """The decision a winning (non-suppressing) rule makes for a lesson."""
    action = winner.rule.then
    assert action.form is not None
    mandate = lesson.mandate if action.mandate is None else stricter(action.mandate, lesson.mandate)
    return Decision(
        lesson_id=lesson.id,
        lesson_version=lesson.version,
        rule_id=winner.rule_id,
        rule_set_version=rule_set_version,
        form=action.form,
        mandate=mandate,
        due_in=action.due_window,
        audience=action.audience,
        priority=winner.priority,
        severity_rank=lesson.severity_rank or 6,
        text_template=action.text,
    )


def template_variables(lesson: Lesson, work_item: WorkItem, rule: Rule) -> dict[str, Any]:
    """The closed set of values item templates see."""
    return {
        "lesson": {
            "id": lesson.id,
            "version": lesson.version,
            "title": lesson.title,
            "statement": lesson.statement,
            "mandate": lesson.mandate.value,
            "form": lesson.form.value,
            "owner": lesson.owner,
            "checklist": [item.text for item in lesson.checklist],
            "adaptation_notes": lesson.applicability.adaptation_notes,
        },
        "work_item": {
            "ref": work_item.ref,
            "title": work_item.title,
            "project": work_item.project,
            "team": work_item.team or "",
            "system": work_item.system.value,
            "type": work_item.type,
        },
        "rule": {"id": rule.id, "description": rule.description},
        "due": rule.then.due or "",
    }
