"""`cairn serve` and `cairn worker`: the long-running processes."""

import asyncio
import logging
import signal

import click
import uvicorn
from prometheus_client import start_http_server

from router.cli.support import load_settings, require_schema
from router.compose import build_runtime
from router.lessons.cadence import CadenceSchedule
from router.lms.sweeper import TrainingSync
from router.metrics import REGISTRY
from router.observability import tracing
from router.observability.setup import configure
from router.overdue import OverdueSweeper
from router.ruleset.reloader import RulesReloader

log = logging.getLogger("cairn")


@click.command()
@click.option("--host", default=None, help="Listen address (default CAIRN_HOST or 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (default CAIRN_PORT or 8000).")
@click.option("--no-workers", is_flag=True, help="Serve the API only; run `cairn worker` apart.")
def serve(host: str | None, port: int | None, no_workers: bool) -> None:
    """Run the HTTP API and, unless --no-workers, the pipeline workers."""
    from router.http.app import create_app

    settings = load_settings()
    configure(settings)
    require_schema(settings)
    runtime = build_runtime(settings, consume=not no_workers)
    log.info(
        "serving on %s:%s, database %s, transport %s",
        host or settings.host,
        port or settings.port,
        settings.redacted_database_url(),
        settings.redacted_broker_url(),
    )
    uvicorn.run(
        create_app(runtime),
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_level="warning",
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    tracing.stop()


@click.command()
def worker() -> None:
    """Run pipeline workers only (scale them out in broker mode)."""
    settings = load_settings()
    configure(settings)
    require_schema(settings)
    runtime = build_runtime(settings)
    if settings.metrics_port is not None:
        # This process's own counters (stage timings, outside calls); the API serves the queue.
        start_http_server(settings.metrics_port, addr=settings.host, registry=REGISTRY)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reloader = RulesReloader(runtime.rules, settings.rules_reload_seconds, runtime.db)
        sweeper = OverdueSweeper.configured(runtime.db, settings, runtime.targets)
        training = TrainingSync.configured(
            runtime.db, settings, runtime.lms_clients, runtime.transport.notify
        )
        cadence = CadenceSchedule.configured(runtime.db, settings, runtime.targets, runtime.rules)
        runtime.db.checkpoint_in_background()
        await runtime.transport.start()
        await reloader.start()
        await sweeper.start()
        await training.start()
        if cadence is not None:
            await cadence.start()
        log.info("worker running, transport %s", settings.redacted_broker_url())
        await stop.wait()
        if cadence is not None:
            await cadence.stop()
        await training.stop()
        await sweeper.stop()
        await reloader.stop()
        await runtime.transport.stop()
        runtime.db.dispose()

    asyncio.run(run())
    tracing.stop()
