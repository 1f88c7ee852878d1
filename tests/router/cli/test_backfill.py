"""`cairn backfill jira`: JQL pages become work items routed by the running pipeline; resumable."""

import json
from pathlib import Path

from click.testing import CliRunner

from connectors.jira import adf
from connectors.jira.engineer import Engineer
from connectors.jira.fake import JiraFake
from core.work import System
from router.cli import main
from store import audit, outbox
from tests.connectors.jira.test_end_to_end import JIRA_SECRET, RULES
from tests.router.support import drain, publish_examples, serving

JQL = "project = PAY AND statusCategory != Done ORDER BY key"


def env(fake: JiraFake, database_url: str) -> dict[str, str]:
    return {
        "CAIRN_DATABASE_URL": database_url,
        "CAIRN_JIRA_URL": fake.url,
        "CAIRN_JIRA_EMAIL": fake.email,
        "CAIRN_JIRA_API_TOKEN": fake.token,
        "CAIRN_JIRA_ACCOUNT_ID": fake.account_id,
    }


def test_backfill_routes_open_issues_and_resumes(
    sqlite_url: str, webhook_secret: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "jira.yaml").write_text(RULES)
    state = tmp_path / "state.json"
    with JiraFake().running() as fake:
        engineer = Engineer(fake)
        keys = [
            engineer.create_issue("PAY", f"Work {n}", components=("ledger-api",))[0]
            for n in range(5)
        ]
        engineer.move(keys[4], "Done")
        engineer.create_issue("OPS", "Elsewhere", components=("ledger-api",))
        with serving(
            sqlite_url,
            webhook_secret,
            prepare=publish_examples,
            rules_path=rules,
            jira_webhook_secret=JIRA_SECRET,
            targets={System.JIRA: fake.target()},
        ) as (_client, db):
            fake.fail(429, times=1, retry_after="1", match="GET /search/jql")  # paced, not fatal
            args = ["backfill", "jira", "--jql", JQL, "--lesson", "derive-pool-size"]
            args += ["--page-size", "2", "--state", str(state)]
            result = CliRunner().invoke(main, args, env=env(fake, sqlite_url))
            assert result.exit_code == 0, result.output
            assert "queued 4 issues" in result.output
            drain(db, seconds=20)
            for key in keys[:4]:
                doc = fake.description(key)
                assert adf.plain_text(doc["content"][-2]) == "Lessons learned"
            assert fake.description(keys[4]) == adf.empty_doc()  # done: not in the query
            with db.transaction() as session:
                pages = audit.entries(session, action="backfill.page")
            assert [p.details["queued"] for p in pages] == [
                [f"jira:{k}" for k in keys[0:2]],
                [f"jira:{k}" for k in keys[2:4]],
            ]
            assert json.loads(state.read_text())["done"] is True

            again = CliRunner().invoke(main, args, env=env(fake, sqlite_url))
            assert "already finished" in again.output

            # An interrupted run continues after its last saved page.
            state.write_text(
                json.dumps(
                    {
                        "jql": JQL,
                        "lesson": "derive-pool-size",
                        "token": "2",
                        "seen": 2,
                        "done": False,
                    }
                )
            )
            writes = sum(fake.writes.values())
            resumed = CliRunner().invoke(main, args, env=env(fake, sqlite_url))
            assert resumed.exit_code == 0, resumed.output
            drain(db, seconds=20)
            with db.transaction() as session:
                last = audit.entries(session, action="backfill.page")[-1]
                counts = outbox.counts(session)
            assert last.details["queued"] == [f"jira:{k}" for k in keys[2:4]]
            assert sum(fake.writes.values()) == writes  # already placed: nothing written
            assert counts["dead"] == 0


def test_backfill_refuses_an_unpublished_lesson_and_missing_settings(
    sqlite_url: str, tmp_path: Path
) -> None:
    with JiraFake().running() as fake:
        with serving(sqlite_url, "whsec_" + "A" * 40):
            pass
        args = [
            "backfill",
            "jira",
            "--jql",
            JQL,
            "--lesson",
            "nope",
            "--state",
            str(tmp_path / "s"),
        ]
        refused = CliRunner().invoke(main, args, env=env(fake, sqlite_url))
        assert refused.exit_code == 1 and "not published" in refused.output
        bare = CliRunner().invoke(main, args, env={"CAIRN_DATABASE_URL": sqlite_url})
        assert bare.exit_code == 1 and "Jira is not configured" in bare.output
        assert fake.token not in refused.output + bare.output
