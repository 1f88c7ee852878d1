"""`cairn cadence run|read` against the Jira and GitHub fakes."""

import json

from click.testing import CliRunner

from connectors.github.fake import FakeGitHub
from connectors.jira.fake import JiraFake
from core.base import utcnow
from core.cadence import Tracker
from router.cli import main
from store import audit, migrate, teams
from store.engine import Database
from tests.router.test_cadence import PAST, dismiss, flag, lesson, publish


def test_run_opens_the_issues_reports_them_and_writes_nothing_the_second_time(
    sqlite_url: str,
) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    publish(db, lesson("pool-size", "payments", PAST), lesson("retry-budget", "platform"))
    flag(db, "retry-budget")
    dismiss(db, "pool-size")
    with db.transaction() as session:
        teams.set_tracker(session, "payments", Tracker(jira="PAY"), utcnow())
        teams.set_tracker(session, "platform", Tracker(github="acme/platform"), utcnow())
    jira, github = JiraFake(), FakeGitHub()
    with jira.running(), github.running():
        env = {
            "CAIRN_DATABASE_URL": sqlite_url,
            "CAIRN_PUBLIC_URL": "https://cairn.example.com",
            "CAIRN_JIRA_URL": jira.url,
            "CAIRN_JIRA_EMAIL": jira.email,
            "CAIRN_JIRA_API_TOKEN": jira.token,
            "CAIRN_GITHUB_TOKEN": "ghp_fake",
            "CAIRN_GITHUB_API_URL": github.url,
            "CAIRN_GITHUB_SECONDS_BETWEEN_REQUESTS": "0",
            "CAIRN_GITHUB_SECONDS_BETWEEN_WRITES": "0",
        }
        first = CliRunner().invoke(main, ["cadence", "run", "--format", "json"], env=env)
        assert first.exit_code == 0, (first.output, first.exception)
        rows = {row["team"]: row for row in json.loads(first.output)}
        assert (rows["payments"]["action"], rows["payments"]["issue"]) == ("opened", "PAY-1")
        assert rows["payments"]["items"] == 1  # past review and with feedback: one lesson
        assert rows["payments"]["url"] == f"{jira.url}/browse/PAY-1"
        assert (rows["platform"]["action"], rows["platform"]["issue"]) == (
            "opened",
            "acme/platform#1",
        )
        second = CliRunner().invoke(main, ["cadence", "run"], env=env)
        assert second.exit_code == 0, (second.output, second.exception)
        assert second.output.count("unchanged") == 2

        read = CliRunner().invoke(main, ["cadence", "read", "pool-size", "--as", "dana"], env=env)
        assert read.exit_code == 0 and "pool-size: feedback marked read" in read.output
        missing = CliRunner().invoke(main, ["cadence", "read", "nope"], env=env)
        assert missing.exit_code == 1 and "lesson 'nope' does not exist" in missing.output
        third = CliRunner().invoke(main, ["cadence", "run", "--format", "json"], env=env)
        rows = {row["team"]: row for row in json.loads(third.output)}
        assert (rows["payments"]["action"], rows["payments"]["issue"]) == ("updated", "PAY-1")
    with db.transaction() as session:
        actions = [e.action for e in audit.entries(session) if e.action.startswith("cadence.")]
        read_by = audit.entries(session, action="feedback.read")
    assert actions == ["cadence.opened", "cadence.opened", "cadence.updated"]
    assert read_by[0].details == {"label": "dana"}
    db.dispose()


def test_run_with_half_a_jira_configuration_stops_with_the_reason(sqlite_url: str) -> None:
    migrate.upgrade(Database(sqlite_url))
    env = {"CAIRN_DATABASE_URL": sqlite_url, "CAIRN_JIRA_URL": "https://example.atlassian.net"}
    result = CliRunner().invoke(main, ["cadence", "run"], env=env)
    assert result.exit_code == 1
    assert "Jira needs CAIRN_JIRA_URL, CAIRN_JIRA_EMAIL and CAIRN_JIRA_API_TOKEN" in result.output
