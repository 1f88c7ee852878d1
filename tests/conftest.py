"""Shared fixtures: databases (SQLite file and a fresh PostgreSQL database) and secrets.

PostgreSQL and RabbitMQ tests talk to the real servers named by CAIRN_TEST_POSTGRES_URL and
CAIRN_TEST_RABBIT_URL. Locally an unreachable server skips those tests; under CI=true it fails.
"""

import base64
import os
import secrets
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from store import migrate
from store.engine import Database

POSTGRES_URL = os.environ.get(
    "CAIRN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RABBIT_URL = os.environ.get("CAIRN_TEST_RABBIT_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("CAIRN_TEST_NATS_URL", "nats://127.0.0.1:4222")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FIGURES_PROPERTY = "e2e-figures"
"""A line of measured figures travels as a user property of its test's report, so it reaches
the summary whichever pytest-xdist worker ran the test."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the end-to-end tests measured (`tests/e2e/conftest.py`'s `report`)."""
    lines = [
        str(value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == FIGURES_PROPERTY
    ]
    if lines:
        terminalreporter.section("end-to-end figures")
        for line in lines:
            terminalreporter.write_line(line)


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 2):
            return True
    except OSError:
        return False


def require_server(url: str, what: str) -> None:
    """Skip (locally) or fail (under CI=true) when a server the test needs is unreachable."""
    if not _reachable(url):
        message = f"{what} is not reachable at {urlsplit(url).netloc.rpartition('@')[2]}"
        if IN_CI:
            pytest.fail(message + " (CI=true: servers are required, not optional)")
        pytest.skip(message)


@pytest.fixture
def webhook_secret() -> str:
    """A fresh Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file database URL in a temporary directory."""
    return f"sqlite:///{tmp_path / 'cairn.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A brand-new PostgreSQL database on the real server, dropped afterwards."""
    require_server(POSTGRES_URL, "PostgreSQL")
    name = f"cairn_test_{uuid.uuid4().hex[:12]}"
    admin = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = urlsplit(admin)
    yield base._replace(path=f"/{name}").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def rabbit_url() -> str:
    """The real RabbitMQ server's URL."""
    require_server(RABBIT_URL, "RabbitMQ")
    return RABBIT_URL


@pytest.fixture
def rabbit_prefix(rabbit_url: str) -> Iterator[str]:
    """A private exchange and queue prefix on the real RabbitMQ, deleted afterwards."""
    import asyncio

    import aio_pika

    from router.ruleset.active import ActiveRules
    from router.stages import build_stages

    prefix = f"cairn-test-{uuid.uuid4().hex[:8]}"
    yield prefix

    async def cleanup() -> None:
        async with await aio_pika.connect(rabbit_url) as connection:
            channel = await connection.channel()
            for queue in [*build_stages(ActiveRules(None)), "dead"]:
                await channel.queue_delete(f"{prefix}.{queue}")
            for exchange in (prefix, f"{prefix}.dlx"):
                await channel.exchange_delete(exchange)

    asyncio.run(cleanup())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: the contract suites run against both."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    """A migrated SQLite database (for tests that need only one backend)."""
    database = Database(sqlite_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def nats_url() -> str:
    """The real NATS server's URL (JetStream enabled)."""
    require_server(NATS_URL, "NATS")
    return NATS_URL


@pytest.fixture
def nats_prefix(nats_url: str) -> Iterator[str]:
    """A private subject prefix and its streams on the real NATS server, deleted afterwards."""
    import asyncio
    from contextlib import suppress

    import nats

    from router.transport.nats import stream_name

    prefix = f"cairn-test-{uuid.uuid4().hex[:8]}"
    yield prefix

    async def cleanup() -> None:
        connection = await nats.connect(nats_url)
        js = connection.jetstream()
        for name in (stream_name(prefix), f"{stream_name(prefix)}_dead"):
            with suppress(Exception):  # never created by this test
                await js.delete_stream(name)
        await connection.close()

    asyncio.run(cleanup())
