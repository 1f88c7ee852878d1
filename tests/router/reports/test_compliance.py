"""The compliance matrix, waivers and evidence bundles over the seeded ledger, both backends."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text

from core.access import Principal, Role
from core.compliance import Cell
from core.errors import ForbiddenError
from core.lesson import LessonStatus, Mandate, content_hash
from router.cli import main
from router.compose import build_runtime
from router.http.app import create_app
from router.reports.adoption import Filters
from router.reports.compliance import ComplianceService
from router.reports.evidence import EvidenceService, verify_bundle
from router.settings import Settings
from store import audit, ledger, lessons, migrate, placements, work_items
from store.engine import Database
from tests.router.reports.test_adoption import NOW, T0, _work_item, seed
from tests.router.support import DRAFT, bearer
from tests.store.plans import sqlite_plans

AUDITOR = Principal("token:auditor", frozenset({Role.COMPLIANCE}))


def publish(db: Database, lesson_id: str, mandate: Mandate) -> None:
    from core.lesson import Lesson

    lesson = Lesson.model_validate(
        {**DRAFT, "id": lesson_id, "mandate": mandate.value, "version": 1}, strict=False
    )
    with db.transaction() as session:
        lessons.add(session, lesson.model_copy(update={"status": LessonStatus.DRAFT}), T0)
        lessons.publish(session, lesson_id, T0)


def seeded(db: Database) -> None:
    seed(db)  # every seeded placement is required
    publish(db, "pool", Mandate.REQUIRED)
    publish(db, "retries", Mandate.INVITED)  # mandated through its placements only


def record_trail(db: Database) -> None:
    """The audit trail the service and the stages write: publications, plans, signals."""
    with db.transaction() as session:
        for lesson_id in ("pool", "retries"):
            published = lessons.get_version(session, lesson_id, 1)
            assert published is not None
            digest = content_hash(published.model_dump(mode="json"))
            audit.record(
                session,
                actor="token:lee",
                action="lesson.published",
                subject=lesson_id,
                details={"version": 1, "content_hash": digest},
                now=T0,
            )
        for entry in ledger.entries(session):
            placement = entry.placement
            audit.record(
                session,
                actor="cairn:route",
                action="placement.planned",
                subject=placement.work_item_ref,
                details={"placement": placement.id},
                now=T0,
            )
            for signal in entry.signals:
                audit.record(
                    session,
                    actor="github:dana",
                    action=f"signal.{signal.kind.value}",
                    subject=placement.work_item_ref,
                    details={"placement": placement.id, "delivery": signal.delivery_id},
                    now=T0,
                )


def test_the_matrix_worked_out_by_hand(db: Database) -> None:
    seeded(db)
    matrix = ComplianceService(db).matrix(Filters(), NOW)
    assert (matrix.lessons, matrix.teams) == (["pool", "retries"], ["ledger", "payments"])
    cells = {key: cell.cell for key, cell in matrix.cells.items()}
    assert cells == {
        ("pool", "ledger"): Cell.DISMISSED,  # p3
        ("pool", "payments"): Cell.OVERDUE,  # p1 verified, p5 overdue: the worst decides
        ("retries", "ledger"): Cell.OPEN,  # p4 ignored (merged with the item open)
        ("retries", "payments"): Cell.OPEN,  # p2 acknowledged, p6 delivered, p7 verified
    }
    assert matrix.cells[("pool", "payments")].placements == ["p1", "p5"]
    asked = ComplianceService(db).matrix(Filters(teams=["payments", "security", "web"]), NOW)
    assert asked.cells[("pool", "security")].cell == Cell.NOT_REACHED
    assert asked.cells[("pool", "security")].why() == (
        "no work item of this team was seen in the period"
    )
    with db.transaction() as session:  # the security team had work, and nothing reached it
        work_items.record(session, _work_item("github:acme/vault#1", "security"), T0)
    asked = ComplianceService(db).matrix(Filters(teams=["security"]), NOW)
    why = asked.cells[("pool", "security")].why()
    assert why is not None and why.startswith("1 work items of this team were seen")


def test_a_team_with_placements_but_no_mandated_one_is_a_column_of_not_reached(
    db: Database,
) -> None:
    """The matrix's columns are every team with a placement in the period: a team that only
    ever received invited lessons is where a mandated lesson failed to reach, not absent."""
    from core.placement import EmbeddingForm, Placement, PlacementState

    seeded(db)
    with db.transaction() as session:
        work_items.record(session, _work_item("github:acme/web#3", "web"), T0)
        placements.add(
            session,
            Placement(
                id="advisory-1",
                lesson_id="caching",
                lesson_version=1,
                work_item_ref="github:acme/web#3",
                rule_id="org/caching",
                rule_set_version="v1",
                form=EmbeddingForm.GITHUB_PR_CHECKLIST,
                mandate=Mandate.INVITED,
                state=PlacementState.EMBEDDED,
                created_at=T0,
                updated_at=T0,
            ),
        )
    for filters in (Filters(), Filters(since=T0 - timedelta(hours=3))):  # tallies, then SQL
        matrix = ComplianceService(db).matrix(filters, NOW)
        assert matrix.lessons == ["pool", "retries"]  # the invited lesson is no row
        assert matrix.teams == ["ledger", "payments", "web"]
        web = matrix.cells[("pool", "web")]
        assert web.cell == Cell.NOT_REACHED
        assert web.why() == (
            "1 work items of this team were seen in the period and none received it: "
            "no rule placed it in 1"
        )
    with db.transaction() as session:
        assert ledger.teams_placed(session, T0 + timedelta(days=1), None) == ["payments"]
        assert ledger.teams_placed(session, None, T0) == []


def test_waivers_count_until_they_expire_and_only_where_they_apply(db: Database) -> None:
    seeded(db)
    service = ComplianceService(db)
    service.waive(AUDITOR, "pool", "ledger", "ledger has no connection pool", timedelta(days=30))
    service.waive(
        AUDITOR, "pool", "payments", "the issue is a spike", timedelta(days=30), "jira:PAY-9"
    )
    matrix = service.matrix(Filters())
    assert matrix.cells[("pool", "ledger")].cell == Cell.WAIVED
    payments = matrix.cells[("pool", "payments")]
    # Waiving the overdue item's work item leaves the verified one to decide the cell.
    assert (payments.cell, payments.waived_placements) == (Cell.VERIFIED, ["p5"])
    assert payments.tiers["withdrawn"] == 1  # p8 is shown but counts for nothing
    # 31 days on, both waivers have expired and stop counting.
    later = service.matrix(Filters(), T0 + timedelta(days=400))
    assert later.cells[("pool", "ledger")].cell == Cell.DISMISSED
    with pytest.raises(ForbiddenError):
        reader = Principal("token:r", frozenset({Role.READER}))
        service.waive(reader, "pool", "ledger", "no", timedelta(days=1))


def test_waivers_of_one_work_item_search_its_placements_on_sqlite(sqlite_db: Database) -> None:
    """A waiver of one work item finds that item's placements by an index: a row-value IN
    alone made SQLite read every placement for each matrix."""
    with sqlite_plans(sqlite_db) as plans, sqlite_db.transaction() as session:
        ledger.in_work_items(session, Filters(), T0, [("pool", "jira:PAY-9"), ("x", "jira:PAY-1")])
    [plan] = plans
    assert any(step.startswith("SEARCH placements") for step in plan), plan
    assert not any(step.startswith("SCAN placements") for step in plan), plan


def test_an_evidence_bundle_verifies_offline_and_shows_tampering(
    db: Database, tmp_path: Path
) -> None:
    seeded(db)
    record_trail(db)
    bundle = EvidenceService(db).bundle(Filters(lessons=["pool"]), NOW)
    assert verify_bundle(bundle) == []
    chain = next(c for c in bundle["placements"] if c["placement"]["id"] == "p1")
    assert (chain["rule"], chain["rule_set_version"], chain["lesson"]) == (
        "org/pool",
        "v1",
        "pool@1",
    )
    assert [s["delivery_id"] for s in chain["signals"]] == ["d0-0", "d0-1"]
    by_seq = {row["seq"]: row["action"] for row in bundle["audit"]}
    assert sorted(by_seq[seq] for seq in chain["audit_seqs"]) == [
        "lesson.published",
        "placement.planned",
        "signal.merged_clean",
        "signal.ticked",
    ]

    # Each alteration an auditor could be misled by is named.
    def rehashed_lesson(b: dict[str, Any]) -> None:
        cited = b["lessons"]["pool@1"]
        cited["lesson"]["statement"] = "Something else."
        cited["content_hash"] = content_hash(cited["lesson"])
        for c in b["placements"]:
            c["content_hash"] = cited["content_hash"]

    def first_chain(b: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in b["placements"] if c["placement"]["id"] == "p1")

    for tamper, found in (
        (lambda b: b["lessons"]["pool@1"]["lesson"].update(title="x"), "pool@1: its content"),
        (rehashed_lesson, "differs from what was published"),
        (lambda b: b["audit"][0].update(actor="mallory"), "its content does not match"),
        (lambda b: b["audit"].pop(0), "are not in the bundle"),
        (lambda b: first_chain(b)["signals"][0].update(kind="merged_clean"), "not in the audit"),
        (lambda b: first_chain(b)["placement"].update(tier="acknowledged"), "its signals make it"),
        (lambda b: b["matrix"]["cells"][1].update(cell="verified"), "its placements make it"),
        (lambda b: b["placements"].pop(0), "have no chain"),
        (lambda b: first_chain(b).update(audit_seqs=[]), "cites no audit entry"),
        (lambda b: b["head"].update(hash="x"), "not a sequence number"),
    ):
        copy = json.loads(json.dumps(bundle))
        tamper(copy)
        assert any(found in p for p in verify_bundle(copy)), found
    # Through the CLI: export and verify (exit 0); alter the log, export again: exit 1.
    url = db.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    out = tmp_path / "bundle.json"
    env = {"CAIRN_DATABASE_URL": url}
    exported = runner.invoke(main, ["evidence", "export", "--out", str(out)], env=env)
    assert exported.exit_code == 0, exported.output
    verified = runner.invoke(main, ["evidence", "verify", str(out)])
    assert verified.exit_code == 0 and "verified:" in verified.output
    with db.transaction() as session:
        session.execute(text("UPDATE audit_log SET actor = 'x' WHERE action = 'placement.planned'"))
    runner.invoke(main, ["evidence", "export", "--out", str(out)], env=env)
    altered = runner.invoke(main, ["evidence", "verify", str(out)])
    assert altered.exit_code == 1 and "its content does not match its hash" in altered.output


def test_compliance_over_http(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    seeded(db)
    settings = Settings(database_url=SecretStr(sqlite_url), poll_interval=0.05)
    auditor, reader = bearer(db, "auditor", "compliance"), bearer(db, "reader", "reader")
    with TestClient(create_app(build_runtime(settings))) as client:
        matrix = client.get("/api/v1/reports/compliance", headers=reader).json()
        assert {(c["lesson"], c["team"]): c["cell"] for c in matrix["cells"]}[
            ("pool", "payments")
        ] == "overdue"
        refused = client.post(
            "/api/v1/waivers",
            json={"lesson": "pool", "team": "ledger", "reason": "n/a", "expires": "30d"},
            headers=reader,
        )
        assert refused.status_code == 403
        granted = client.post(
            "/api/v1/waivers",
            json={"lesson": "pool", "team": "ledger", "reason": "no pool", "expires": "30d"},
            headers=auditor,
        )
        assert granted.status_code == 201, granted.text
        assert granted.json()["approved_by"] == "token:auditor"
        for bad in (
            {"lesson": "pool", "team": "ledger", "reason": "x", "expires": "never"},
            {"lesson": "pool", "team": "ledger", "reason": "x", "expires": "400d"},
            {"lesson": "pool", "team": "ledger", "reason": "x", "expires": "\u0661d"},
            {"lesson": "pool", "team": None, "reason": None},
            {"lesson": "pool", "team": 123, "reason": ["a"]},
            {"lesson": "pool", "team": "(no team)", "reason": "x"},
            {"lesson": "pool", "team": "ledger", "reason": "x", "work_item": "not a ref"},
        ):
            refused = client.post("/api/v1/waivers", json=bad, headers=auditor)
            assert refused.status_code == 422, (bad, refused.text)
        assert len(client.get("/api/v1/waivers", headers=reader).json()) == 1
        assert client.get("/api/v1/waivers", headers=reader).json()[0]["team"] == "ledger"
        evidence = client.get(
            "/api/v1/reports/compliance/evidence",
            params={"lesson": "pool", "team": "payments"},
            headers=reader,
        ).json()
        assert evidence["cell"]["cell"] == "overdue"
        assert [c["placement"]["id"] for c in evidence["chains"]] == ["p1", "p5"]
    runner = CliRunner()
    table = runner.invoke(main, ["report", "compliance"], env={"CAIRN_DATABASE_URL": sqlite_url})
    assert table.output.splitlines() == [
        "lesson   ledger  payments",
        "pool     waived  OVERDUE",
        "retries  OPEN    OPEN",
    ]
    db.dispose()
