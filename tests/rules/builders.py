"""Builders for lessons, work items and rule sets, and a helper routing through both evaluators."""

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import yaml

from core.lesson import Applicability, Lesson, LessonForm, LessonStatus, Mandate, Provenance, Scope
from core.work import System, WorkItem
from rules import engine as installed_engine
from rules import native, reference
from rules.decision import Decision
from rules.engine import Engine
from rules.loader import RuleSet, build_rule_set

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _builds() -> dict[str, ModuleType]:
    builds = {native.build(): installed_engine}
    if "compiled" in builds:
        builds["python"] = native.load_source()
    return builds


BUILDS = _builds()
"""Every build of the routing engine in this install (the mypyc-compiled one, if installed, and
the source): the tests hold each of them to the reference."""
ENGINES: list[type[Engine]] = [build.Engine for build in BUILDS.values()]


def scope(**fields: Sequence[str]) -> Scope:
    """A Scope from lists of strings."""
    return Scope(**{name: tuple(values) for name, values in fields.items()})


def applicability(
    exclusions: Mapping[str, Sequence[str]] | None = None, **fields: Sequence[str]
) -> Applicability:
    """An Applicability from lists of strings, with optional exclusions."""
    return Applicability(
        **{name: tuple(values) for name, values in fields.items()},
        exclusions=scope(**(exclusions or {})),
    )


def lesson(
    lesson_id: str = "l1",
    *,
    form: LessonForm = LessonForm.STANDARD,
    mandate: Mandate = Mandate.INVITED,
    owner: str = "alice",
    severity_rank: int | None = None,
    applies: Applicability | None = None,
    title: str = "Size the pool",
    statement: str = "Pools are sized from measured concurrency.",
) -> Lesson:
    """A published lesson; everything not given is neutral."""
    return Lesson(
        id=lesson_id,
        version=1,
        title=title,
        statement=statement,
        form=form,
        provenance=Provenance(captured_by="ana", captured_at=T0),
        applicability=applies or Applicability(),
        mandate=mandate,
        owner=owner,
        status=LessonStatus.PUBLISHED,
        severity_rank=severity_rank,
    )


def item(
    system: System = System.GITHUB,
    *,
    project: str | None = None,
    type_: str | None = None,
    labels: Sequence[str] = (),
    components: Sequence[str] = (),
    paths: Sequence[str] = (),
    base_branch: str | None = None,
    team: str | None = None,
    number: int = 1,
) -> WorkItem:
    """A work item in `system`, with sensible defaults for its project and type."""
    defaults = {
        System.GITHUB: ("acme/api", "pull_request"),
        System.JIRA: ("PAY", "Story"),
        System.LMS: ("onboarding", "course"),
    }
    default_project, default_type = defaults[system]
    project = project or default_project
    return WorkItem(
        system=system,
        ref=f"{system.value}:{project}#{number}",
        project=project,
        type=type_ or default_type,
        title="Change the pool",
        labels=tuple(labels),
        components=tuple(components),
        changed_paths=tuple(paths),
        base_branch=base_branch,
        team=team,
    )


def pack(name: str, *rules: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """A pack as the YAML mapping a rule file holds (rules get ids r1, r2, … unless given)."""
    numbered = [{"id": f"r{i}", **rule} for i, rule in enumerate(rules, start=1)]
    return {"pack": name, **fields, "rules": numbered}


def rule_set(*packs: Mapping[str, Any]) -> RuleSet:
    """Dump each pack to YAML and load them through the real loader, keeping the given order."""
    return build_rule_set(
        (f"{i:03d}-{p['pack']}.yaml", yaml.safe_dump(dict(p), sort_keys=False))
        for i, p in enumerate(packs)
    )


def route_both(
    rules: RuleSet,
    lessons: Sequence[Lesson],
    work_item: WorkItem,
    already_placed: Collection[str] = (),
) -> tuple[Decision, ...]:
    """Route through every engine build and the reference; they must agree, and the result is
    returned."""
    naive = reference.route(rules, lessons, work_item, already_placed=already_placed)
    for engine in ENGINES:
        routing = engine(rules, lessons).route(work_item, already_placed=already_placed)
        assert routing.placements == naive.placements, f"{engine.__module__} and reference disagree"
    return naive.placements


def placed_ids(decisions: Sequence[Decision]) -> list[str]:
    """Lesson ids in placement order."""
    return [d.lesson_id for d in decisions]


def skip_reason(
    rules: RuleSet, lessons: Sequence[Lesson], work_item: WorkItem, lesson_id: str
) -> str:
    """The reference's explanation of why `lesson_id` was not placed."""
    routing = reference.route(rules, lessons, work_item, explain=True)
    reasons = [s.reason for s in routing.skipped if s.lesson_id == lesson_id]
    assert len(reasons) == 1, routing.skipped
    return reasons[0]
