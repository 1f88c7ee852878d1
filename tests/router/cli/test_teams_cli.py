"""`cairn teams import|list|show` through the real CLI, against a migrated database."""

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from router.cli import main
from store import audit, migrate, teams
from store.engine import Database

TEAMS = """\
teams:
  payments:
    - person: dana@example.com
      name: Dana Hill
      email: dana@example.com
      moodle: 17
      canvas: 4021
      github: dana-h
    - person: lee
      email: lee@example.com
      xapi: lee-account
      lms: {totara: "88"}
  checkout:
    - person: sam
      jira: 5b10ac8d82e05b22cc7d4ef5
"""

Cairn = Callable[..., Result]


@pytest.fixture
def cairn(sqlite_url: str) -> Iterator[tuple[Cairn, Database]]:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Result:
        result = runner.invoke(
            main, ["teams", *args], env={"CAIRN_DATABASE_URL": sqlite_url, "LOGNAME": "ops"}
        )
        assert result.exit_code == code, (result.output, result.exception)
        return result

    yield run, db
    db.dispose()


def test_import_then_again_changes_nothing(cairn: tuple[Cairn, Database], tmp_path: Path) -> None:
    run, db = cairn
    file = tmp_path / "teams.yaml"
    file.write_text(TEAMS, encoding="utf-8")
    first = run("import", str(file), "--as", "hr-sync")
    assert first.stdout.splitlines() == [
        "payments: 2 added, 0 changed, 0 removed",
        "checkout: 1 added, 0 changed, 0 removed",
    ]
    again = run("import", str(file))
    assert again.stdout.splitlines() == [
        "payments: 0 added, 0 changed, 0 removed",
        "checkout: 0 added, 0 changed, 0 removed",
        "nothing changed",
    ]
    # Lee leaves payments, Dana's name changes; checkout is not in this file and stays.
    csv = tmp_path / "payments.csv"
    csv.write_text("team,person,name,email\npayments,dana@example.com,Dana H.,\n", "utf-8")
    assert run("import", str(csv)).stdout == "payments: 0 added, 1 changed, 1 removed\n"
    with db.transaction() as session:
        payments = teams.team(session, "payments")
        assert payments is not None
        [dana] = payments.members
        assert (dana.name, dana.email, dana.lms_ids) == ("Dana H.", None, {})
        assert teams.team(session, "checkout") is not None
        trail = [(e.action, e.subject, e.actor, e.details) for e in audit.entries(session)]
    assert trail == [
        (
            "team.imported",
            "team:payments",
            "cli:ops",
            {
                "added": 2,
                "changed": 0,
                "removed": 0,
                "via": "file",
                "file": str(file),
                "label": "hr-sync",
            },
        ),
        (
            "team.imported",
            "team:checkout",
            "cli:ops",
            {
                "added": 1,
                "changed": 0,
                "removed": 0,
                "via": "file",
                "file": str(file),
                "label": "hr-sync",
            },
        ),
        (
            "team.imported",
            "team:payments",
            "cli:ops",
            {"added": 0, "changed": 1, "removed": 1, "via": "file", "file": str(csv)},
        ),
    ]


def test_a_bad_file_names_every_problem_and_writes_nothing(
    cairn: tuple[Cairn, Database], tmp_path: Path
) -> None:
    run, db = cairn
    file = tmp_path / "teams.yaml"
    file.write_text(
        "teams:\n  payments:\n    - person: dana\n      email: dana@\n"
        "    - person: DANA\n  ops:\n    - {person: sam, slack: x}\n",
        encoding="utf-8",
    )
    result = run("import", str(file), code=1)
    assert result.stderr.splitlines() == [
        f"{file}:4: team 'payments', person 'dana': email: 'dana@' is not an email address "
        "(name@domain.tld)",
        f"{file}:7: unknown field 'slack' (expected person, name, email, moodle, canvas, xapi, "
        "github, jira, lms, logins)",
        "nothing imported",
    ]
    assert result.stdout == ""
    with db.transaction() as session:
        assert teams.teams(session) == [] and audit.entries(session) == []


def test_an_id_already_given_to_someone_else_is_refused_at_its_line(
    cairn: tuple[Cairn, Database], tmp_path: Path
) -> None:
    run, db = cairn
    first = tmp_path / "payments.csv"
    first.write_text("team,person,moodle\npayments,dana,17\n", "utf-8")
    run("import", str(first))
    second = tmp_path / "ops.csv"
    second.write_text("team,person,moodle\nops,sam,5\nops,lee,17\n", "utf-8")
    result = run("import", str(second), code=1)
    assert result.stderr.splitlines()[0] == (
        f"{second}:3: team 'ops', person 'lee': moodle id '17' is also given to 'dana' in "
        "'payments'"
    )
    with db.transaction() as session:
        assert teams.team(session, "ops") is None
    # Replacing both teams in one file moves the id.
    both = tmp_path / "both.csv"
    both.write_text("team,person,moodle\npayments,dana,\nops,lee,17\n", "utf-8")
    assert run("import", str(both)).stdout.splitlines() == [
        "payments: 0 added, 1 changed, 0 removed",
        "ops: 1 added, 0 changed, 0 removed",
    ]


def test_a_file_that_is_not_utf8_is_named_at_its_line(
    cairn: tuple[Cairn, Database], tmp_path: Path
) -> None:
    run, _ = cairn
    file = tmp_path / "teams.csv"
    file.write_bytes(b"team,person,name\npayments,dana,Dana\nops,sam,S\xe9verine\n")
    assert run("import", str(file), code=1).stderr.startswith(f"{file}:3: not UTF-8 text")


def test_list_and_show(cairn: tuple[Cairn, Database], tmp_path: Path) -> None:
    run, _ = cairn
    file = tmp_path / "teams.yaml"
    file.write_text(TEAMS, encoding="utf-8")
    run("import", str(file))
    assert run("list").stdout.splitlines() == [
        "team      members  email  moodle  canvas  xapi  github  jira",
        "checkout  1        0      0       0       0     0       1",
        "payments  2        2      1       1       1     1       0",
    ]
    listed = json.loads(run("list", "--format", "json").stdout)
    assert [t["name"] for t in listed] == ["checkout", "payments"]
    assert listed[1]["members"][0]["lms_ids"] == {"moodle": "17", "canvas": "4021"}

    shown = run("show", "payments").stdout.splitlines()
    assert shown[0].split() == [
        "person", "name", "email", "moodle", "canvas", "xapi", "github", "jira", "other"
    ]  # fmt: skip
    assert shown[1].split() == [
        "dana@example.com", "Dana", "Hill", "dana@example.com", "17", "4021", "-", "dana-h", "-",
        "-",
    ]  # fmt: skip
    assert shown[2].split() == [
        "lee", "-", "lee@example.com", "-", "-", "lee-account", "-", "-", "totara=88"
    ]  # fmt: skip
    as_json = json.loads(run("show", "checkout", "--format", "json").stdout)
    assert as_json == {
        "name": "checkout",
        "members": [
            {
                "person": "sam",
                "name": "",
                "email": None,
                "lms_ids": {},
                "logins": {"jira": "5b10ac8d82e05b22cc7d4ef5"},
            }
        ],
    }
    missing = run("show", "nobody", code=1)
    assert "no team 'nobody'" in missing.stderr
