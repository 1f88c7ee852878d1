"""`cairn rules …`: schema, validate, test (explain) and backtest, through the real CLI."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from core.base import utcnow
from core.work import WorkItem
from router.cli import main
from store import migrate, work_items
from store.engine import Database
from tests.router.support import EXAMPLES, FIXTURES, publish_examples


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env or {})
    return result.exit_code, result.output


def test_schema_is_json_schema_of_a_pack() -> None:
    code, output = run("rules", "schema")
    schema = json.loads(output)
    assert code == 0
    assert {"pack", "rules"} <= set(schema["properties"])
    assert "Rule" in schema["$defs"]


def test_validate_reports_every_problem_with_file_line_column(tmp_path: Path) -> None:
    code, output = run("rules", "validate", str(EXAMPLES))
    assert code == 0 and output.startswith("ok: 3 packs, 6 rules, version ")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pack: team-x\nlevel: team\nteam: x\nrules:\n"
        "  - id: a\n    lesson: {tagz: [db]}\n    then: {form: github.pr_checklist}\n"
        "  - id: b\n    then: {form: jira.checklist, due: soon}\n"
    )
    code, output = run("rules", "validate", str(bad))
    assert code == 1
    assert f"{bad}:6:14: rules.0.lesson.tagz: unknown key 'tagz'" in output
    assert f"{bad}:9:39: rules.1.then.due:" in output and "like 48h, 14d or 2w" in output
    code, output = run("rules", "validate", str(tmp_path / "missing.yaml"))
    assert code == 1 and "no such file or directory" in output


def test_validate_a_missing_path_names_it_without_a_position() -> None:
    code, output = run("rules", "validate", "/no/such/path")
    assert code == 1
    assert "/no/such/path: no such file or directory" in output
    assert ":1:1" not in output


def test_validate_a_directory_without_rule_files_names_it_without_a_position(
    tmp_path: Path,
) -> None:
    (tmp_path / "notes.txt").write_text("not a rule file")
    code, output = run("rules", "validate", str(tmp_path))
    assert code == 1
    assert f"{tmp_path}: no *.yaml rule files in directory" in output
    assert ":1:1" not in output


def test_validate_lists_errors_in_line_order_without_pydantic_prefixes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pack: org\nrules:\n"
        "  - id: a\n    then: {suppress: true, due: soon}\n"
        "  - id: a\n    then: {suppress: true}\n"
    )
    code, output = run("rules", "validate", str(bad))
    assert code == 1
    problems = [line for line in output.splitlines() if line.startswith(str(bad))]
    assert [line.split(":")[1] for line in problems] == ["4", "5"], output
    assert "Value error" not in output


def test_explains_every_lesson_for_a_work_item() -> None:
    args = ["rules", "test", "--rules", str(EXAMPLES), "--lesson", str(EXAMPLES / "lessons.json")]
    code, output = run(*args, "--work-item", str(FIXTURES / "work_item_pull_request.json"))
    assert code == 0, output
    assert (
        "PLACE derive-pool-size@1 by team-payments/pool-sizing-is-required-here as "
        "github.pr_checklist, required, due in 3d" in output
    )
    assert "SKIP  cache-bust-css: suppressed by team-payments/no-frontend-noise" in output
    code, output = run(
        *args,
        "--work-item",
        str(FIXTURES / "work_item_pull_request.json"),
        "--placed",
        "derive-pool-size",
        "--format",
        "json",
    )
    report = json.loads(output)
    assert {row["lesson"]: row["placed"] for row in report["lessons"]} == {
        "derive-pool-size": False,
        "cache-bust-css": False,
    }
    assert "already placed" in json.dumps(report)


def test_a_bad_work_item_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "item.json"
    broken.write_text('{"system": "github"}')
    code, output = run(
        "rules",
        "test",
        "--rules",
        str(EXAMPLES),
        "--work-item",
        str(broken),
        "--lesson",
        str(EXAMPLES / "lessons.json"),
    )
    assert code == 1 and f"{broken}: not a work item" in output


@pytest.fixture
def history(sqlite_url: str) -> str:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    publish_examples(db)
    base = json.loads((FIXTURES / "work_item_pull_request.json").read_text())["work_item"]
    with db.transaction() as session:
        for number, team in ((1, "payments"), (2, "payments"), (3, "checkout")):
            item = WorkItem.model_validate(
                {**base, "ref": f"github:acme/payments-api#{number}", "team": team}, strict=False
            )
            work_items.record(session, item, utcnow())
            work_items.record(session, item, utcnow())  # a second event for the same PR
    db.dispose()
    return sqlite_url


def test_backtest_compares_draft_rules_with_the_active_ones(history: str, tmp_path: Path) -> None:
    draft = tmp_path / "draft"
    shutil.copytree(EXAMPLES, draft, ignore=shutil.ignore_patterns("*.json"))
    org = draft / "organisation.yaml"
    text = org.read_text().replace('paths: ["src/**/db/**", "deploy/**"]', 'paths: ["docs/**"]')
    org.write_text(text.replace("base_branches: [main]", "base_branches: [release]"))
    env = {"CAIRN_DATABASE_URL": history, "CAIRN_RULES_PATH": str(EXAMPLES)}
    code, output = run("rules", "backtest", "--rules", str(draft), "--since", "1d", env=env)
    assert code == 0, output
    assert output.splitlines()[0].startswith("6 work-item events since 1d, 2 published lessons")
    rows = {
        line.split()[0]: line.split()[1:]
        for line in output.splitlines()[2:]
        if not line.startswith("  ")
    }
    # payments PRs keep the team rule; the checkout PR loses the organisation rule's placement
    assert rows["payments"] == ["2", "2", "+0"]
    assert rows["checkout"] == ["0", "1", "-1"]
    assert "  - derive-pool-size in github:acme/payments-api#3 (checkout)" in output
    assert "((" not in output


def test_backtest_names_work_items_without_a_team_once(history: str, tmp_path: Path) -> None:
    db = Database(history)
    base = json.loads((FIXTURES / "work_item_pull_request.json").read_text())["work_item"]
    item = WorkItem.model_validate(
        {**base, "ref": "github:acme/payments-api#4", "team": None}, strict=False
    )
    with db.transaction() as session:
        work_items.record(session, item, utcnow())
    db.dispose()
    draft = tmp_path / "draft"
    shutil.copytree(EXAMPLES, draft, ignore=shutil.ignore_patterns("*.json"))
    org = draft / "organisation.yaml"
    text = org.read_text().replace('paths: ["src/**/db/**", "deploy/**"]', 'paths: ["docs/**"]')
    org.write_text(text.replace("base_branches: [main]", "base_branches: [release]"))
    env = {"CAIRN_DATABASE_URL": history, "CAIRN_RULES_PATH": str(EXAMPLES)}
    code, output = run("rules", "backtest", "--rules", str(draft), "--since", "1d", env=env)
    assert code == 0, output
    assert any(line.startswith("(no team) ") for line in output.splitlines()), output
    assert "  - derive-pool-size in github:acme/payments-api#4 (no team)" in output
    assert "((no team))" not in output


def test_backtest_writes_nothing(history: str, tmp_path: Path) -> None:
    db = Database(history)

    def placements_and_events() -> tuple[int, int]:
        with db.transaction() as session:
            placed = session.execute(text("select count(*) from placements")).scalar_one()
            seen = session.execute(text("select count(*) from work_item_events")).scalar_one()
        return placed, seen

    before = placements_and_events()
    code, _ = run(
        "rules", "backtest", "--rules", str(EXAMPLES), env={"CAIRN_DATABASE_URL": history}
    )
    after = placements_and_events()
    db.dispose()
    assert code == 0
    assert before == after == (0, 6)


def test_backtest_on_a_database_without_the_schema_says_what_to_run(tmp_path: Path) -> None:
    env = {"CAIRN_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    code, output = run("rules", "backtest", "--rules", str(EXAMPLES), env=env)
    assert code == 1
    assert "run `cairn db upgrade`" in output


def test_backtest_names_work_items_that_would_pass_their_budget(
    history: str, tmp_path: Path
) -> None:
    draft = tmp_path / "draft"
    draft.mkdir()
    (draft / "org.yaml").write_text(
        "pack: org\nlevel: organisation\npriority: 100\nbudget:\n  max_items_per_work_item: 1\n"
        "rules:\n  - id: everything-required\n    lesson: {}\n    work_item:\n"
        "      systems: [github]\n    then:\n      form: github.pr_checklist\n"
        "      mandate: required\n"
    )
    env = {"CAIRN_DATABASE_URL": history}
    code, output = run("rules", "backtest", "--rules", str(draft), "--since", "1d", env=env)
    assert code == 0, output
    # Both published lessons are required on each of the three PRs; the budget is 1: one item
    # of its own and one grouped item each.
    assert (
        "3 work items would pass their budget (the required lessons past it are grouped" in output
    )
    assert (
        "  ! github:acme/payments-api#1 (payments): 2 items, budget 1 (+1), 1 grouped into one item"
        in output
    )
    assert "  3 lessons would be grouped, in 3 grouped items" in output
    code, output = run("rules", "backtest", "--rules", str(EXAMPLES), "--since", "1d", env=env)
    assert "no work item would pass its budget" in output
