"""The GitHub demo step runs against a served Cairn and the fake, as `cairn demo` will call it."""

import asyncio
from pathlib import Path

from pydantic import SecretStr

from connectors.github.fake import FakeGitHub
from core.work import System
from router.demo.github import github_demo_target, run_github_demo
from router.settings import Settings
from store import migrate
from store.engine import Database
from tests.router.demo.support import free_port, served
from tests.router.support import EXAMPLES, publish_examples


def test_the_github_demo_step_behaves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    db = Database(url)
    migrate.upgrade(db)
    publish_examples(db)
    port, secret, said = free_port(), "demo secret", []
    settings = Settings(
        database_url=SecretStr(url),
        github_webhook_secret=SecretStr(secret),
        rules_path=EXAMPLES,
        port=port,
        poll_interval=0.05,
    )

    async def scenario(fake: FakeGitHub) -> bool:
        async with served(settings, {System.GITHUB: github_demo_target(fake)}) as cairn_url:
            return await run_github_demo(
                lambda step, text: said.append(f"{step}: {text}"), cairn_url, db, fake, secret
            )

    with FakeGitHub().running() as fake:
        assert asyncio.run(scenario(fake)), said
    db.dispose()
    assert any("cairn:lessons:start" in line for line in said)
    assert said[-1] == "github: TICKED signal recorded"
