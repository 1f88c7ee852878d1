"""Recurrence matching and placement relation, as tables of cases (pure)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.incident import Incident
from core.lesson import Applicability, Lesson, Mandate, Provenance
from core.placement import EmbeddingForm, Placement, PlacementState
from core.recurrence import MatchedOn, match, recurrence, relation
from core.work import WorkItem

T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


def incident(**changes: Any) -> Incident:
    fields: dict[str, Any] = {
        "source": "generic",
        "external_id": "INC-9",
        "title": "Pool exhausted again",
        "status": "triggered",
        "services": ["payments-api"],
        "components": ["db-pool"],
        "teams": ["payments"],
        "tags": ["database"],
        "started_at": T0,
    }
    return Incident.model_validate(fields | changes, strict=False)


def lesson(**applicability: Any) -> Lesson:
    return Lesson(
        id="pool-size",
        version=3,
        title="Derive the pool size",
        statement="Recompute the pool with the workers.",
        provenance=Provenance(
            source_incidents=("generic:INC-1",), captured_by="ana", captured_at=T0
        ),
        applicability=Applicability.model_validate(applicability, strict=False),
        owner="platform",
    )


@pytest.mark.parametrize(
    ("applicability", "changes", "expected"),
    [
        ({"services": ["payments-api"]}, {}, MatchedOn(services=("payments-api",))),
        ({"components": ["db-pool"]}, {}, MatchedOn(components=("db-pool",))),
        (
            {"services": ["ledger-api"], "components": ["db-pool"]},
            {},
            MatchedOn(components=("db-pool",)),
        ),  # service or component
        ({"services": ["ledger-api"]}, {}, None),
        ({"tags": ["database"]}, {}, None),  # tags alone never make a recurrence
        ({}, {}, None),
        (
            {"services": ["payments-api"], "tags": ["database", "cache"]},
            {},
            MatchedOn(services=("payments-api",), tags=("database",)),
        ),
        ({"services": ["payments-api"], "tags": ["cache"]}, {}, None),  # tags, if any, must meet
        ({"services": ["payments-api"], "tags": ["database"]}, {"tags": []}, None),
        (
            {"services": ["payments-api"], "teams": ["payments"]},
            {},
            MatchedOn(services=("payments-api",), teams=("payments",)),
        ),
        ({"services": ["payments-api"], "teams": ["ledger"]}, {}, None),
        (
            {"services": ["payments-api"], "repos": ["acme/other"], "paths": ["x/**"]},
            {},
            MatchedOn(services=("payments-api",)),
        ),  # repositories and paths describe code, not incidents
        ({"services": ["payments-api"], "exclusions": {"teams": ["payments"]}}, {}, None),
        ({"services": ["payments-api"], "exclusions": {"tags": ["database"]}}, {}, None),
        ({"services": ["payments-api"], "exclusions": {"components": ["db-pool"]}}, {}, None),
        (
            {"services": ["payments-api"], "exclusions": {"services": ["ledger-api"]}},
            {},
            MatchedOn(services=("payments-api",)),
        ),
        ({"services": ["payments-api"]}, {"external_id": "INC-1"}, None),  # its own source
        ({"services": ["Payments-API"]}, {}, None),  # values compare exactly
    ],
)
def test_match(
    applicability: dict[str, Any], changes: dict[str, Any], expected: MatchedOn | None
) -> None:
    assert match(incident(**changes), lesson(**applicability)) == expected


def test_the_draft_captured_from_the_incident_is_not_a_recurrence() -> None:
    captured = lesson(services=["payments-api"]).model_copy(
        update={
            "id": "from-generic-inc-9",
            "provenance": Provenance(captured_by="x", captured_at=T0),
        }
    )
    assert match(incident(), captured) is None


def item(**changes: Any) -> WorkItem:
    fields: dict[str, Any] = {
        "system": "github",
        "ref": "github:acme/web#1",
        "project": "acme/web",
        "type": "pull_request",
    }
    return WorkItem.model_validate(fields | changes, strict=False)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ()),
        ({"team": "payments"}, ("team:payments",)),
        ({"team": "ledger"}, ()),
        ({"project": "acme/payments-api"}, ("service:payments-api",)),  # the repository's name
        ({"labels": ["payments-api"]}, ("service:payments-api",)),
        (
            {"components": ["db-pool", "payments-api"], "team": "payments"},
            ("team:payments", "service:payments-api", "component:db-pool"),
        ),
        ({"system": "jira", "ref": "jira:PAY-1", "project": "PAY", "type": "Story"}, ()),
    ],
)
def test_relation_of_a_work_item_to_the_incident(
    changes: dict[str, Any], expected: tuple[str, ...]
) -> None:
    assert relation(incident(), item(**changes)) == expected


def placement(pid: str, ref: str, state: PlacementState, at: datetime) -> Placement:
    return Placement(
        id=pid,
        lesson_id="pool-size",
        lesson_version=2,
        work_item_ref=ref,
        rule_id="r",
        rule_set_version="v",
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        mandate=Mandate.REQUIRED,
        state=state,
        created_at=at,
        updated_at=at,
    )


def test_the_record_keeps_placements_made_before_the_incident_in_related_work() -> None:
    related = item(ref="github:acme/payments-api#4", project="acme/payments-api")
    placed = [
        (placement("p1", related.ref, PlacementState.DISMISSED, T0 - timedelta(days=9)), related),
        (
            placement("p2", "github:acme/web#1", PlacementState.COMPLETED, T0 - timedelta(days=8)),
            item(),
        ),
        (placement("p3", related.ref, PlacementState.EMBEDDED, T0 + timedelta(hours=1)), related),
        (placement("p4", "jira:GONE-1", PlacementState.PLANNED, T0 - timedelta(days=1)), None),
    ]
    found = recurrence(incident(), lesson(services=["payments-api"]), MatchedOn(), placed, T0)
    assert [(p.placement_id, p.state, p.related_by) for p in found.placements] == [
        ("p1", PlacementState.DISMISSED, ("service:payments-api",))
    ]
    assert (found.placed, found.states, found.lesson_version) == (True, {"dismissed": 1}, 3)
    unstarted = recurrence(
        incident(started_at=None), lesson(), MatchedOn(), placed, T0 + timedelta(hours=2)
    )
    assert [p.placement_id for p in unstarted.placements] == ["p1", "p3"]
    nothing = recurrence(incident(), lesson(), MatchedOn(), [], T0)
    assert (nothing.placed, nothing.states) == (False, {})
