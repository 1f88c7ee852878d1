"""Serving Cairn for a demo step's test: the app built for the fakes, on a free loopback port."""

import asyncio
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from connectors.target import Target
from core.work import System
from router.compose import build_runtime
from router.http.app import create_app
from router.settings import Settings
from store import migrate
from store.engine import Database

SECRET = "demo secret"
"""The GitHub webhook secret the demo steps sign with in these tests."""


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def served(settings: Settings, targets: Mapping[System, Target]) -> AsyncIterator[str]:
    """Cairn serving on `settings.port` with `targets` for the outside systems; its URL."""
    runtime = build_runtime(settings, targets=targets)
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=settings.port, log_level="error"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # uvicorn offers a flag, not an event
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        await task


def demo_database(directory: Path, rules: Path, **settings: Any) -> tuple[Database, Settings]:
    """A migrated SQLite database in `directory` and the settings serving it on a free port
    with the `rules`, GitHub webhooks signed with `SECRET`."""
    url = f"sqlite:///{directory / 'demo.db'}"
    db = Database(url)
    migrate.upgrade(db)
    return db, Settings(
        database_url=SecretStr(url),
        github_webhook_secret=SecretStr(SECRET),
        rules_path=rules,
        port=free_port(),
        poll_interval=0.05,
        **settings,
    )
