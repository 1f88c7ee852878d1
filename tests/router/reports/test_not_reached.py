"""`not reached` cells say why: suppressed, over the fatigue budget, no matching rule, no work.

A pull request of the payments team is routed by a pack with a budget of one item: the required
lesson takes it, a review-and-justify lesson is left out by the budget, another is suppressed by
the team's own rule, and a fourth no rule selects. The route records the two it held back
(audited once), and the matrix, the CLI and the API name each reason.
"""

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from connectors.generic.webhook import sign
from core.base import utcnow
from core.compliance import Cell, NotReached
from core.lesson import Lesson, LessonStatus
from router.cli import main
from router.reports.adoption import Filters
from router.reports.compliance import ComplianceService
from store import audit, lessons
from store.engine import Database
from tests.router.support import DRAFT, PR, PR_REF, drain, serving

PACKS = {
    "organisation.yaml": """
pack: org
level: organisation
budget:
  max_items_per_work_item: 1
rules:
  - id: everything-on-prs
    description: Every lesson on every pull request.
    lesson:
      ids: [must-do, weigh-it, not-for-payments]
    work_item:
      systems: [github]
    then:
      form: github.pr_checklist
""",
    "team-payments.yaml": """
pack: payments
level: team
team: payments
rules:
  - id: no-frontend-here
    description: Payments opts out of this one.
    lesson:
      ids: [not-for-payments]
    work_item:
      teams: [payments]
    then:
      suppress: true
""",
}
MANDATES = {
    "must-do": "required",
    "weigh-it": "review_and_justify",
    "not-for-payments": "review_and_justify",
    "never-selected": "required",
}


def _publish(db: Database) -> None:
    with db.transaction() as session:
        for lesson_id, mandate in MANDATES.items():
            lesson = Lesson.model_validate(
                {**DRAFT, "id": lesson_id, "version": 1, "mandate": mandate, "applicability": {}},
                strict=False,
            )
            lessons.add(session, lesson.model_copy(update={"status": LessonStatus.DRAFT}), utcnow())
            lessons.publish(session, lesson_id, utcnow())


def test_not_reached_cells_name_the_reason(
    database_url: str, webhook_secret: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in PACKS.items():
        (rules / name).write_text(text)
    body = PR.read_bytes()
    with serving(database_url, webhook_secret, prepare=_publish, rules_path=rules) as (
        client,
        db,
    ):
        for delivery in ("m1", "m2"):  # routed twice: the reasons are audited once
            client.post(
                "/hooks/generic", content=body, headers=sign(webhook_secret, delivery, body)
            )
            drain(db)
        with db.transaction() as session:
            held = audit.entries(session, action="placement.held_back")
        [entry] = held
        assert (entry.subject, entry.details["held_back"]) == (
            PR_REF,
            {
                "not-for-payments": {
                    "reason": "suppressed",
                    "detail": "suppressed by payments/no-frontend-here",
                },
                "weigh-it": {"reason": "budget", "detail": "over the fatigue budget of 1"},
            },
        )

        asked = Filters(teams=["payments", "web"])
        matrix = ComplianceService(db).matrix(asked)
        cells = {lesson: matrix.cells[(lesson, "payments")] for lesson in MANDATES}
        # No target is configured: the required lesson is planned and never delivered.
        assert {lesson: c.cell for lesson, c in cells.items()} == dict.fromkeys(
            MANDATES, Cell.NOT_REACHED
        )
        assert {lesson: c.reason() for lesson, c in cells.items()} == {
            "must-do": NotReached.NOT_DELIVERED,
            "weigh-it": NotReached.BUDGET,
            "not-for-payments": NotReached.SUPPRESSED,
            "never-selected": NotReached.NO_RULE,
        }
        assert cells["weigh-it"].why() == (
            "1 work items of this team were seen in the period and none received it: "
            "over the fatigue budget in 1"
        )
        assert cells["never-selected"].why() == (
            "1 work items of this team were seen in the period and none received it: "
            "no rule placed it in 1"
        )
        assert matrix.cells[("weigh-it", "web")].reason() == NotReached.NO_WORK
        # A period after the routing: the team had no work then, and nothing was held back.
        later = Filters(teams=["payments"], since=utcnow() + timedelta(days=1))
        cell = ComplianceService(db).matrix(later).cells[("weigh-it", "payments")]
        assert cell.reason() == NotReached.NO_WORK

        shown = client.get(
            "/api/v1/reports/compliance", params={"team": ["payments"], "lesson": ["weigh-it"]}
        ).json()
        [only] = shown["cells"]
        assert (only["cell"], only["reason"], only["held_back"]) == (
            "not reached",
            "budget",
            {"budget": 1},
        )
        url = db.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": url}
    table = runner.invoke(main, ["report", "compliance", "--team", "payments"], env=env)
    assert table.exit_code == 0, table.output
    assert [line.split(None, 1) for line in table.output.splitlines()] == [
        ["lesson", "payments"],
        ["must-do", "- undelivered"],
        ["never-selected", "- no rule"],
        ["not-for-payments", "- suppressed"],
        ["weigh-it", "- budget"],
    ]
    csv = runner.invoke(main, ["report", "compliance", "--format", "csv"], env=env).output
    header, *rows = csv.splitlines()
    assert header == "lesson,team,cell,reason,placements,waiver,why"
    assert any(r.startswith("weigh-it,payments,not reached,budget,,,") for r in rows)
    shown_json = runner.invoke(main, ["report", "compliance", "--format", "json"], env=env)
    found = json.loads(shown_json.output)
    assert {c["lesson"]: c["reason"] for c in found["cells"]}["not-for-payments"] == "suppressed"
