"""The GitHub demo step runs against a served Cairn and the fake, as `cairn demo` will call it."""

import asyncio
from pathlib import Path

from connectors.github.fake import FakeGitHub
from core.work import System
from router.demo.github import github_demo_target, run_github_demo
from tests.router.demo.support import SECRET, demo_database, served
from tests.router.support import EXAMPLES, publish_examples


def test_the_github_demo_step_behaves(tmp_path: Path) -> None:
    db, settings = demo_database(tmp_path, EXAMPLES)
    publish_examples(db)
    secret, said = SECRET, []

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
