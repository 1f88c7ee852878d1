"""The Jira demo step runs against a real Cairn server (uvicorn) and the Jira fake."""

import asyncio
import socket
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from connectors.jira.fake import JiraFake
from core.work import System
from router.compose import build_runtime
from router.demo.jira import run_jira_demo
from router.http.app import create_app
from router.settings import Settings
from store import migrate
from store.engine import Database
from tests.connectors.jira.test_end_to_end import JIRA_SECRET, RULES
from tests.router.support import publish_examples


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        runtime = build_runtime(settings, targets={System.JIRA: fake.target()})

        async def run() -> bool:
            config = uvicorn.Config(
                create_app(runtime), host="127.0.0.1", port=port, log_level="warning"
            )
            server = uvicorn.Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started and not task.done():
                await asyncio.sleep(0.02)
            try:
                return await run_jira_demo(
                    lambda step, text: lines.append(f"{step}: {text}"),
                    f"http://127.0.0.1:{port}",
                    db,
                    fake,
                    JIRA_SECRET,
                )
            finally:
                server.should_exit = True
                await task

        try:
            assert asyncio.run(run()), "\n".join(lines)
        finally:
            db.dispose()
    text = "\n".join(lines)
    assert "signed jira:issue_created → 202" in text
    assert "Lessons learned" in text and "[ ]" in text
    assert "ticked" in text.splitlines()[-1]
