"""The GitHub demo step runs against a served Cairn and the fake, as `cairn demo` will call it."""

import asyncio
import socket
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from connectors.github.fake import FakeGitHub
from core.work import System
from router.compose import build_runtime
from router.demo.github import github_demo_target, run_github_demo
from router.http.app import create_app
from router.settings import Settings
from store import migrate
from store.engine import Database
from tests.router.support import EXAMPLES, publish_examples


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_github_demo_step_behaves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    db = Database(url)
    migrate.upgrade(db)
    publish_examples(db)
    port, secret, said = _free_port(), "demo secret", []
    settings = Settings(
        database_url=SecretStr(url),
        github_webhook_secret=SecretStr(secret),
        rules_path=EXAMPLES,
        port=port,
        poll_interval=0.05,
    )

    async def scenario(fake: FakeGitHub) -> bool:
        runtime = build_runtime(settings, targets={System.GITHUB: github_demo_target(fake)})
        config = uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="error")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:  # uvicorn offers a flag, not an event
            await asyncio.sleep(0.02)
        try:
            return await run_github_demo(
                lambda step, text: said.append(f"{step}: {text}"),
                f"http://127.0.0.1:{port}",
                db,
                fake,
                secret,
            )
        finally:
            server.should_exit = True
            await task

    with FakeGitHub().running() as fake:
        assert asyncio.run(scenario(fake)), said
    db.dispose()
    assert any("cairn:lessons:start" in line for line in said)
    assert said[-1] == "github: TICKED signal recorded"
