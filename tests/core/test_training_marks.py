"""Training marks: a completion verifies a learner's placement, a failure is recorded once and
leaves it open, and a lesson's training modules do not change the hash of older versions."""

from core.adoption import Tier, tier_of
from core.feedback import ItemMark, reconcile
from core.lesson import TrainingModule, content_hash
from core.placement import EmbeddingForm, Placement, PlacementState, SignalKind
from tests.core.test_feedback import T0, mark, observe, placement


def lms(state: PlacementState = PlacementState.EMBEDDED, reason: str | None = None) -> Placement:
    return placement(state=state, form=EmbeddingForm.LMS_ASSIGNMENT, reason=reason)


def test_a_completion_completes_the_placement_and_verifies_it() -> None:
    [change] = reconcile([lms()], observe(mark(ItemMark.COMPLETED)))
    assert change.signal.kind == SignalKind.TRAINING_COMPLETED
    assert change.placement.state == PlacementState.COMPLETED
    assert tier_of(change.placement, [change.signal], T0) == Tier.VERIFIED
    assert reconcile([change.placement], observe(mark(ItemMark.COMPLETED), delivery="d2")) == []


def test_an_overdue_assignment_completed_late_is_verified() -> None:
    [change] = reconcile([lms(PlacementState.OVERDUE)], observe(mark(ItemMark.COMPLETED)))
    assert change.placement.state == PlacementState.COMPLETED


def test_a_failure_is_recorded_once_and_the_assignment_stays_open() -> None:
    [change] = reconcile([lms()], observe(mark(ItemMark.FAILED, reason="score 40%")))
    assert change.signal.kind == SignalKind.TRAINING_FAILED
    assert change.placement.state == PlacementState.EMBEDDED
    assert change.placement.reason == "failed: score 40%"
    again = observe(mark(ItemMark.FAILED, reason="score 40%"), delivery="d2", hours=2)
    assert reconcile([change.placement], again) == []
    passed = observe(mark(ItemMark.COMPLETED), delivery="d3", hours=3)
    [later] = reconcile([change.placement], passed)
    assert later.placement.state == PlacementState.COMPLETED


def test_modules_do_not_change_the_canonical_form_of_a_module_without_them() -> None:
    plain = TrainingModule(title="Pool sizing", duration_minutes=20)
    assert "modules" not in plain.model_dump(mode="json")
    before = {"title": "Pool sizing", "url": None, "duration_minutes": 20}
    assert content_hash(plain.model_dump(mode="json")) == content_hash(before)
    named = TrainingModule.model_validate(
        {"title": "Pool sizing", "modules": {"moodle": "42", "xapi": "https://lms.example/a/1"}},
        strict=False,
    )
    assert named.model_dump(mode="json")["modules"] == {
        "moodle": "42",
        "xapi": "https://lms.example/a/1",
    }
