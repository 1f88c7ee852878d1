"""Core models: strict, frozen, timezone-safe, and parsed from JSON the way ingress sees them."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from core.base import CoreModel, utcnow
from core.events import CanonicalEvent, IncidentEvent, WorkItemEvent
from core.incident import Incident, IncidentStatus, Severity
from core.lesson import ChecklistItem, Lesson, LessonForm, LessonStatus, Mandate, Provenance
from core.placement import EmbeddingForm, Placement, PlacementState, Signal, SignalKind
from core.work import System, WorkItem

T0 = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
PLUS_TWO = timezone(timedelta(hours=2))


def make_incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "source": "pagerduty",
        "external_id": "PABC123",
        "title": "Checkout latency",
        "status": IncidentStatus.RESOLVED,
        "severity": Severity.HIGH,
        "services": ("checkout",),
        "started_at": T0,
    }
    return Incident(**(fields | changes))


def make_work_item(**changes: Any) -> WorkItem:
    fields: dict[str, Any] = {
        "system": System.GITHUB,
        "ref": "github:acme/api#123",
        "project": "acme/api",
        "type": "pull_request",
        "labels": ("payments",),
        "changed_paths": ("src/pay.py",),
    }
    return WorkItem(**(fields | changes))


def make_lesson(**changes: Any) -> Lesson:
    fields: dict[str, Any] = {
        "id": "retry-budgets",
        "version": 1,
        "title": "Bound retries with a budget",
        "statement": "Every client retry loop has a budget and jitter.",
        "form": LessonForm.CHECKLIST,
        "provenance": Provenance(captured_by="ana", captured_at=T0),
        "mandate": Mandate.REQUIRED,
        "checklist": (ChecklistItem(id="c1", text="Retries are bounded"),),
        "owner": "sre",
        "review_by": date(2026, 1, 1),
    }
    return Lesson(**(fields | changes))


def make_placement(**changes: Any) -> Placement:
    fields: dict[str, Any] = {
        "id": "pl-1",
        "lesson_id": "retry-budgets",
        "lesson_version": 2,
        "work_item_ref": "github:acme/api#123",
        "rule_id": "payments-prs",
        "rule_set_version": "v7",
        "form": EmbeddingForm.GITHUB_PR_CHECKLIST,
        "mandate": Mandate.REQUIRED,
        "created_at": T0,
        "updated_at": T0,
    }
    return Placement(**(fields | changes))


def make_signal(**changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "id": "sig-1",
        "placement_id": "pl-1",
        "kind": SignalKind.TICKED,
        "actor": "bob",
        "at": T0,
    }
    return Signal(**(fields | changes))


BUILDERS = {
    "incident": make_incident,
    "work_item": make_work_item,
    "lesson": make_lesson,
    "placement": make_placement,
    "signal": make_signal,
}


def error_types(exc: ValidationError) -> set[str]:
    return {error["type"] for error in exc.errors()}


# --- strict and frozen ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_models_are_frozen(name: str) -> None:
    model = BUILDERS[name]()
    field = next(iter(type(model).model_fields))
    before = getattr(model, field)

    with pytest.raises(ValidationError) as exc:
        setattr(model, field, "changed")

    assert error_types(exc.value) == {"frozen_instance"}
    assert getattr(model, field) == before


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_unknown_fields_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        BUILDERS[name](surprise="value")

    assert error_types(exc.value) == {"extra_forbidden"}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_models_round_trip_through_json(name: str) -> None:
    model = BUILDERS[name]()

    assert type(model).model_validate_json(model.model_dump_json()) == model


def test_nested_models_are_frozen_too() -> None:
    lesson = make_lesson()

    with pytest.raises(ValidationError):
        lesson.provenance.captured_by = "mallory"  # type: ignore[misc]

    assert lesson.provenance.captured_by == "ana"


def all_core_models() -> list[type[CoreModel]]:
    found: list[type[CoreModel]] = []
    pending = list(CoreModel.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(
        (cls for cls in found if cls.__module__.startswith("core.")), key=lambda c: c.__name__
    )


@pytest.mark.parametrize("model", all_core_models(), ids=lambda cls: cls.__name__)
def test_no_core_model_loosens_the_strict_config(model: type[CoreModel]) -> None:
    config = model.model_config

    assert (config.get("strict"), config.get("frozen"), config.get("extra")) == (
        True,
        True,
        "forbid",
    )


@pytest.mark.parametrize(
    ("build", "changes", "expected"),
    [
        (make_placement, {"lesson_version": "2"}, "int_type"),
        (make_signal, {"kind": "ticked"}, "is_instance_of"),
        (make_work_item, {"labels": ["payments"]}, "tuple_type"),
        (make_incident, {"started_at": "2025-03-01T09:30:00Z"}, "datetime_type"),
    ],
    ids=["str-for-int", "str-for-enum", "list-for-tuple", "str-for-datetime"],
)
def test_python_inputs_are_not_coerced(build: Any, changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as exc:
        build(**changes)

    assert expected in error_types(exc.value)


def test_json_input_parses_enums_and_timestamps_from_strings() -> None:
    raw = json.dumps(
        {
            "id": "sig-9",
            "placement_id": "pl-1",
            "kind": "dismissed",
            "at": "2025-03-01T09:30:00Z",
            "reason": "not applicable: no retries here",
        }
    )

    signal = Signal.model_validate_json(raw)

    assert signal.kind is SignalKind.DISMISSED
    assert signal.at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("build", "changes"),
    [
        (make_lesson, {"version": 0}),
        (make_lesson, {"severity_rank": 6}),
        (make_lesson, {"title": "   "}),
        (make_placement, {"lesson_version": 0}),
        (make_incident, {"external_id": ""}),
    ],
    ids=["lesson-version-0", "severity-rank-6", "blank-title", "placement-version-0", "empty-id"],
)
def test_field_constraints_are_enforced(build: Any, changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build(**changes)


# --- work item refs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "ref"),
    [
        (System.GITHUB, "github:acme/api#123"),
        (System.JIRA, "jira:PAY-42"),
        (System.LMS, "lms:course-7/assignment-3"),
    ],
)
def test_work_item_ref_of_its_own_system_is_accepted(system: System, ref: str) -> None:
    item = make_work_item(system=system, ref=ref)

    assert (item.system, item.ref) == (system, ref)


@pytest.mark.parametrize(
    ("system", "ref"),
    [
        (System.GITHUB, "jira:PAY-42"),
        (System.JIRA, "github:acme/api#123"),
        (System.LMS, "jira:PAY-42"),
    ],
)
def test_work_item_ref_of_another_system_is_rejected(system: System, ref: str) -> None:
    with pytest.raises(ValidationError, match="does not belong to system"):
        make_work_item(system=system, ref=ref)


@pytest.mark.parametrize(
    "ref", ["gitlab:acme/api#1", "github:", "github:acme api#1", "acme/api#1", "GITHUB:acme/api#1"]
)
def test_malformed_work_refs_are_rejected(ref: str) -> None:
    with pytest.raises(ValidationError) as exc:
        make_work_item(ref=ref)

    assert "string_pattern_mismatch" in error_types(exc.value)


def test_placement_work_item_ref_must_be_a_work_ref() -> None:
    with pytest.raises(ValidationError):
        make_placement(work_item_ref="acme/api#123")


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (make_signal, "at"),
        (make_placement, "created_at"),
        (make_placement, "due_at"),
        (make_incident, "started_at"),
    ],
)
def test_naive_datetimes_are_rejected(build: Any, field: str) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        build(**{field: datetime(2025, 3, 1, 9, 30)})


def test_naive_datetime_in_json_is_rejected() -> None:
    raw = make_signal().model_dump_json().replace("Z", "")
    assert '"at":"2025-03-01T09:30:15.123456"' in raw

    with pytest.raises(ValidationError, match="timezone"):
        Signal.model_validate_json(raw)


def test_naive_provenance_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Provenance(captured_by="ana", captured_at=datetime(2025, 3, 1))


def test_aware_datetimes_are_normalised_to_utc() -> None:
    local = datetime(2025, 3, 1, 11, 30, tzinfo=PLUS_TWO)

    signal = make_signal(at=local)

    assert signal.at.tzinfo is UTC
    assert signal.at == local
    assert (signal.at.hour, signal.at.minute) == (9, 30)


def test_offset_in_json_is_normalised_to_utc() -> None:
    raw = make_signal().model_dump_json().replace("Z", "-05:00")

    signal = Signal.model_validate_json(raw)

    assert signal.at.utcoffset() == timedelta(0)
    assert signal.at == T0 + timedelta(hours=5)


def test_utcnow_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = utcnow()

    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


# --- severity ----------------------------------------------------------------------------------


def test_severity_rank_orders_worst_first() -> None:
    assert [s.rank for s in Severity] == [1, 2, 3, 4, 5]
    assert Severity.CRITICAL.rank == 1
    assert Severity.INFO.rank == 5
    assert Severity.HIGH.rank < Severity.MEDIUM.rank < Severity.LOW.rank


def test_sorting_by_rank_puts_the_worst_first() -> None:
    mixed = [Severity.LOW, Severity.INFO, Severity.CRITICAL, Severity.MEDIUM, Severity.HIGH]

    assert sorted(mixed, key=lambda s: s.rank) == [
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.MEDIUM,
        Severity.LOW,
        Severity.INFO,
    ]


def test_incident_ref_and_defaults() -> None:
    incident = make_incident(severity=Severity.MEDIUM)

    assert incident.ref == "pagerduty:PABC123"
    assert (
        Incident(
            source="generic", external_id="1", title="t", status=IncidentStatus.TRIGGERED
        ).severity
        is Severity.MEDIUM
    )


# --- placement identity ------------------------------------------------------------------------


def test_effect_id_names_lesson_version_target_and_form() -> None:
    assert make_placement().effect_id == "retry-budgets@2|github:acme/api#123|github.pr_checklist"


def test_effect_id_ignores_bookkeeping_fields() -> None:
    first = make_placement()
    retry = make_placement(
        id="pl-other",
        rule_id="another-rule",
        rule_set_version="v8",
        mandate=Mandate.INVITED,
        state=PlacementState.EMBEDDED,
        handle="cairn:abc",
        due_at=T0 + timedelta(days=3),
        created_at=T0 + timedelta(hours=1),
        updated_at=T0 + timedelta(hours=2),
    )

    assert retry.effect_id == first.effect_id


@pytest.mark.parametrize(
    "changes",
    [
        {"lesson_id": "other-lesson"},
        {"lesson_version": 3},
        {"work_item_ref": "github:acme/api#124"},
        {"form": EmbeddingForm.GITHUB_PR_TEMPLATE},
    ],
    ids=["lesson", "version", "target", "form"],
)
def test_effect_id_changes_with_each_identity_field(changes: dict[str, Any]) -> None:
    assert make_placement(**changes).effect_id != make_placement().effect_id


def test_placement_defaults_to_planned() -> None:
    placement = make_placement()

    assert placement.state is PlacementState.PLANNED
    assert placement.handle is None
    assert placement.due_at is None


def test_lesson_defaults_to_draft_and_model_copy_leaves_the_original_alone() -> None:
    draft = make_lesson()

    published = draft.model_copy(update={"status": LessonStatus.PUBLISHED})

    assert draft.status is LessonStatus.DRAFT
    assert published.status is LessonStatus.PUBLISHED


# --- canonical events --------------------------------------------------------------------------

EVENTS: TypeAdapter[IncidentEvent | WorkItemEvent] = TypeAdapter(CanonicalEvent)


def test_canonical_event_parses_an_incident() -> None:
    raw = json.dumps(
        {
            "type": "incident",
            "incident": {
                "source": "generic",
                "external_id": "INC-7",
                "title": "Queue backlog",
                "status": "acknowledged",
                "severity": "critical",
                "services": ["billing"],
                "started_at": "2025-03-01T11:30:00+02:00",
                "url": "https://status.example.com/inc/7",
            },
        }
    )

    event = EVENTS.validate_json(raw)

    assert isinstance(event, IncidentEvent)
    assert event.incident.ref == "generic:INC-7"
    assert event.incident.status is IncidentStatus.ACKNOWLEDGED
    assert event.incident.severity is Severity.CRITICAL
    assert event.incident.services == ("billing",)
    assert event.incident.started_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_canonical_event_parses_a_work_item() -> None:
    raw = json.dumps(
        {
            "type": "work_item",
            "work_item": {
                "system": "jira",
                "ref": "jira:PAY-42",
                "project": "PAY",
                "type": "Story",
                "labels": ["payments", "retries"],
                "team": "payments",
            },
        }
    )

    event = EVENTS.validate_json(raw)

    assert isinstance(event, WorkItemEvent)
    assert event.work_item.system is System.JIRA
    assert event.work_item.ref == "jira:PAY-42"
    assert event.work_item.labels == ("payments", "retries")


@pytest.mark.parametrize(
    "event",
    [
        IncidentEvent(type="incident", incident=make_incident()),
        WorkItemEvent(type="work_item", work_item=make_work_item()),
    ],
    ids=["incident", "work_item"],
)
def test_canonical_event_round_trips(event: BaseModel) -> None:
    assert EVENTS.validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"type": "deployment", "deployment": {}}, "union_tag_invalid"),
        ({"incident": {}}, "union_tag_not_found"),
        ({"type": "incident", "work_item": {}}, "missing"),
    ],
    ids=["unknown-type", "no-type", "wrong-body"],
)
def test_canonical_event_rejects_bad_envelopes(payload: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as exc:
        EVENTS.validate_json(json.dumps(payload))

    assert expected in error_types(exc.value)


def test_canonical_event_enforces_the_work_item_ref_rule() -> None:
    raw = json.dumps(
        {
            "type": "work_item",
            "work_item": {"system": "github", "ref": "jira:PAY-1", "project": "x", "type": "y"},
        }
    )

    with pytest.raises(ValidationError, match="does not belong to system"):
        EVENTS.validate_json(raw)
