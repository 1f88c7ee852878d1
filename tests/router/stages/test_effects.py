"""Outbound effects through the running service: hydrate, embed, observe and the back-channel.

`RecordingTarget` stands in for an outside system (it is what a tracker would hold, kept in
memory), so these tests exercise Cairn's own stages, transactions and retries for real.
"""

import json
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.generic.webhook import sign
from connectors.target import EmbedEntry, EmbedResult
from core.errors import TransientError
from core.feedback import ItemMark, ItemObservation
from core.placement import PlacementState, SignalKind
from core.work import System, WorkItem
from router.access.operator import cli_principal
from router.lessons.service import LessonService
from store import audit, placements
from store.engine import Database
from tests.router.support import EXAMPLES, PR, PR_REF, drain, publish_examples, serving

OWN = "cairn-bot"


@dataclass
class RecordingTarget:
    """A tracker in memory: the items each work item shows, and every read and write."""

    system: System = System.GITHUB
    own_actor: str | None = OWN
    items: dict[str, dict[str, EmbedEntry]] = field(default_factory=dict)
    marks: dict[str, tuple[ItemMark, str | None]] = field(default_factory=dict)
    writes: int = 0
    reads: int = 0
    failures: int = 0
    extra_paths: tuple[str, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)

    def complete(self, item: WorkItem) -> WorkItem:
        with self.lock:
            self.reads += 1
        paths = tuple(dict.fromkeys((*item.changed_paths, *self.extra_paths)))
        return item.model_copy(update={"changed_paths": paths})

    def embed(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> EmbedResult:
        with self.lock:
            self.reads += 1
            if self.failures:
                self.failures -= 1
                raise TransientError("rate limited", retry_after=0.05)
            shown = self.items.setdefault(item.ref, {})
            wanted = {e.placement_id: e for e in entries if not e.withdrawn}
            if wanted.keys() != shown.keys():  # read before write: only a difference is written
                self.items[item.ref] = wanted
                self.writes += 1
            return EmbedResult(
                handles={pid: f"marker-{pid}" for pid in wanted}, writes=self.writes, reads=1
            )

    def observe(self, item: WorkItem) -> tuple[ItemObservation, ...]:
        with self.lock:
            self.reads += 1
            return tuple(
                ItemObservation(placement_id=pid, mark=mark, reason=reason)
                for pid, (mark, reason) in self.marks.items()
                if pid in self.items.get(item.ref, {})
            )


@pytest.fixture
def target() -> RecordingTarget:
    return RecordingTarget()


@pytest.fixture
def rule_files(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    for name in ("organisation.yaml", "team-payments.yaml"):
        shutil.copy(EXAMPLES / name, folder / name)
    return folder


@pytest.fixture
def app(
    database_url: str,
    webhook_secret: str,
    rule_files: Path,
    target: RecordingTarget,
) -> Iterator[tuple[TestClient, Database]]:
    with serving(
        database_url,
        webhook_secret,
        prepare=publish_examples,
        rules_path=rule_files,
        targets={System.GITHUB: target},
    ) as running:
        yield running


def post(client: TestClient, secret: str, delivery: str, event: dict[str, object]) -> None:
    body = json.dumps(event).encode()
    response = client.post("/hooks/generic", content=body, headers=sign(secret, delivery, body))
    assert response.status_code == 202, response.text


def pr_event(*, complete: bool = False) -> dict[str, object]:
    event: dict[str, object] = json.loads(PR.read_bytes())
    event["complete"] = complete
    return event


def feedback(
    delivery: str, *items: dict[str, object], at: str = "10:00:00", **extra: object
) -> dict[str, object]:
    return {
        "type": "feedback",
        "observation": {
            "work_item_ref": PR_REF,
            "observed_at": f"2026-11-20T{at}Z",
            "actor": "dana",
            "delivery_id": delivery,
            "items": list(items),
            **extra,
        },
    }


def only_placement(db: Database) -> tuple[str, PlacementState, str | None, str]:
    with db.transaction() as session:
        [placed] = placements.for_work_item(session, PR_REF)
    return placed.id, placed.state, placed.handle, placed.text


def test_a_routed_work_item_is_embedded_in_one_write_with_rendered_text(
    app: tuple[TestClient, Database], webhook_secret: str, target: RecordingTarget
) -> None:
    client, db = app
    post(client, webhook_secret, "m1", pr_event())
    drain(db)
    pid, state, handle, text = only_placement(db)
    assert (state, handle) == (PlacementState.EMBEDDED, f"marker-{pid}")
    assert text.startswith("[required] Derive the database pool size from the worker count: ")
    assert target.writes == 1
    entry = target.items[PR_REF][pid]
    assert (entry.text, entry.rule_id) == (text, "team-payments/pool-sizing-is-required-here")
    assert entry.lesson_url == "http://127.0.0.1:8000/ui/lessons/derive-pool-size"
    post(client, webhook_secret, "m2", pr_event())  # the PR changes again: nothing new to place
    drain(db)
    assert target.writes == 1
    with db.transaction() as session:
        [embedded] = audit.entries(session, action="placement.embedded")
    assert embedded.details["embedded"] == [pid]


def test_a_rate_limited_embed_is_retried_and_written_once(
    app: tuple[TestClient, Database], webhook_secret: str, target: RecordingTarget
) -> None:
    client, db = app
    target.failures = 2
    post(client, webhook_secret, "m1", pr_event())
    drain(db, seconds=20)
    assert only_placement(db)[1] == PlacementState.EMBEDDED
    assert (target.writes, target.failures) == (1, 0)


def test_hydration_reads_the_target_before_routing(
    app: tuple[TestClient, Database], webhook_secret: str, target: RecordingTarget
) -> None:
    client, db = app
    event = pr_event(complete=True)
    work_item = event["work_item"]
    assert isinstance(work_item, dict)
    work_item["changed_paths"] = []  # the webhook does not say which files changed
    target.extra_paths = ("src/payments/db/pool.py",)
    post(client, webhook_secret, "m1", event)
    drain(db)
    assert only_placement(db)[1] == PlacementState.EMBEDDED


def test_ticks_dismissals_and_unticks_come_back_as_signals(
    app: tuple[TestClient, Database], webhook_secret: str
) -> None:
    client, db = app
    post(client, webhook_secret, "m1", pr_event())
    drain(db)
    pid = only_placement(db)[0]
    post(client, webhook_secret, "f1", feedback("f1", {"placement_id": pid, "mark": "ticked"}))
    drain(db)
    assert only_placement(db)[1] == PlacementState.COMPLETED
    post(
        client, webhook_secret, "f1-again", feedback("f1", {"placement_id": pid, "mark": "ticked"})
    )
    # Signals are listed by when they were observed; each edit here happens a minute later.
    dismissed = {"placement_id": pid, "mark": "dismissed", "reason": "no pool here"}
    post(client, webhook_secret, "f2", feedback("f2", dismissed, at="10:01:00"))
    reopened = {"placement_id": pid, "mark": "open"}
    post(client, webhook_secret, "f3", feedback("f3", reopened, at="10:02:00"))
    drain(db)
    with db.transaction() as session:
        signals = placements.signals(session, pid)
        state = placements.get(session, pid)
    assert [(s.kind, s.reason) for s in signals] == [
        (SignalKind.TICKED, None),
        (SignalKind.DISMISSED, "no pool here"),
        (SignalKind.UNTICKED, None),
    ]
    assert state is not None and state.state == PlacementState.EMBEDDED


def test_cairns_own_edit_coming_back_changes_nothing(
    app: tuple[TestClient, Database], webhook_secret: str
) -> None:
    client, db = app
    post(client, webhook_secret, "m1", pr_event())
    drain(db)
    pid = only_placement(db)[0]
    own = feedback("f1", {"placement_id": pid, "mark": "ticked"}, actor=OWN)
    post(client, webhook_secret, "f1", own)
    drain(db)
    assert only_placement(db)[1] == PlacementState.EMBEDDED


def test_a_thin_event_makes_cairn_re_read_the_target(
    app: tuple[TestClient, Database], webhook_secret: str, target: RecordingTarget
) -> None:
    client, db = app
    post(client, webhook_secret, "m1", pr_event())
    drain(db)
    pid = only_placement(db)[0]
    target.marks[pid] = (ItemMark.DISMISSED, "handled by the platform team")
    thin = feedback("f1")
    observation = thin["observation"]
    assert isinstance(observation, dict)
    observation["items"] = None
    post(client, webhook_secret, "f1", thin)
    drain(db)
    with db.transaction() as session:
        [signal] = placements.signals(session, pid)
    assert (signal.kind, signal.reason) == (SignalKind.DISMISSED, "handled by the platform team")


def test_merging_with_a_required_item_open_is_recorded(
    app: tuple[TestClient, Database], webhook_secret: str
) -> None:
    client, db = app
    post(client, webhook_secret, "m1", pr_event())
    drain(db)
    pid = only_placement(db)[0]
    post(client, webhook_secret, "f1", feedback("f1", closure="merged"))
    drain(db)
    with db.transaction() as session:
        [signal] = placements.signals(session, pid)
    assert signal.kind == SignalKind.MERGED_UNCHECKED


def test_retiring_a_lesson_removes_its_item_from_the_target(
    app: tuple[TestClient, Database], webhook_secret: str, target: RecordingTarget
) -> None:
    client, db = app
    post(client, webhook_secret, "m1", pr_event())
    drain(db)
    pid = only_placement(db)[0]
    LessonService(db).retire("derive-pool-size", cli_principal())
    drain(db)
    assert target.items[PR_REF] == {}
    assert target.writes == 2
    assert only_placement(db)[1:3] == (PlacementState.WITHDRAWN, None)
    assert pid not in target.items[PR_REF]
