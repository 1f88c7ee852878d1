"""The Jira demo step runs against a real Cairn server (uvicorn) and the Jira fake."""

import asyncio
from pathlib import Path

from pydantic import SecretStr

from connectors.jira.fake import JiraFake
from core.work import System
from router.demo.jira import run_jira_demo
from router.settings import Settings
from store import migrate
from store.engine import Database
from tests.connectors.jira.test_end_to_end import JIRA_SECRET, RULES
from tests.router.demo.support import free_port, served
from tests.router.support import publish_examples


def test_jira_demo_places_and_reads_back(sqlite_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "jira.yaml").write_text(RULES)
    port = free_port()
    lines: list[str] = []
    with JiraFake().running() as fake:
        db = Database(sqlite_url)
        migrate.upgrade(db)
        publish_examples(db)
        settings = Settings(
            database_url=SecretStr(sqlite_url),
            jira_webhook_secret=SecretStr(JIRA_SECRET),
            rules_path=rules,
            poll_interval=0.05,
            port=port,
        )

        async def run() -> bool:
            async with served(settings, {System.JIRA: fake.target()}) as cairn_url:
                return await run_jira_demo(
                    lambda step, text: lines.append(f"{step}: {text}"),
                    cairn_url,
                    db,
                    fake,
                    JIRA_SECRET,
                )

        try:
            assert asyncio.run(run()), "\n".join(lines)
        finally:
            db.dispose()
    text = "\n".join(lines)
    assert "signed jira:issue_created → 202" in text
    assert "Lessons learned" in text and "[ ]" in text
    assert "ticked" in text.splitlines()[-1]
