"""The FastAPI application; its lifespan starts and stops the transport."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from router.compose import Runtime
from router.http import health, ingress, lms_hooks
from router.http.api import (
    capture,
    compliance,
    feedback,
    flags,
    lessons,
    me,
    overdue,
    placements,
    queue,
    reports,
    rules,
    teams,
)
from router.http.api.schemas import REFUSALS
from router.http.errors import install_error_answers
from router.http.guard import Guard
from router.http.limits import BodyLimit
from router.http.session import Sessions
from router.http.ui import capture as ui_capture
from router.http.ui import oversight as ui_oversight
from router.http.ui import pages as ui_pages
from router.http.ui.render import page_error
from router.lessons.cadence import CadenceSchedule
from router.lms.sweeper import TrainingSync
from router.observability import tracing
from router.overdue import OverdueSweeper
from router.ruleset.reloader import RulesReloader


def create_app(runtime: Runtime) -> FastAPI:
    """An app serving ingress and health for an already-built runtime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        reloader = RulesReloader(runtime.rules, runtime.settings.rules_reload_seconds, runtime.db)
        sweeper = OverdueSweeper.configured(runtime.db, runtime.settings, runtime.targets)
        training = TrainingSync.configured(
            runtime.db, runtime.settings, runtime.lms_clients, runtime.transport.notify
        )
        cadence = CadenceSchedule.configured(
            runtime.db, runtime.settings, runtime.targets, runtime.rules
        )
        runtime.db.checkpoint_in_background()
        await runtime.transport.start()
        await reloader.start()
        if runtime.consumes:
            await sweeper.start()
            await training.start()
            if cadence is not None:
                await cadence.start()
        try:
            yield
        finally:
            if cadence is not None:
                await cadence.stop()
            await training.stop()
            await sweeper.stop()
            await reloader.stop()
            await runtime.transport.stop()
            runtime.db.dispose()

    guard = Guard(runtime.settings.auth_failures_per_minute)
    app = FastAPI(
        title="Cairn",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(guard)],
        responses=REFUSALS,
    )
    app.state.runtime = runtime
    app.state.guard = guard
    app.state.sessions = Sessions(runtime.settings)
    app.include_router(lms_hooks.router)  # before `/hooks/{source}`, which would take xapi
    app.include_router(ingress.router)
    app.include_router(health.router)
    app.include_router(me.router)
    app.include_router(rules.router)
    app.include_router(placements.router)
    app.include_router(lessons.router)
    app.include_router(capture.router)
    app.include_router(queue.router)
    app.include_router(reports.router)
    app.include_router(overdue.router)
    app.include_router(compliance.router)
    app.include_router(feedback.router)
    app.include_router(flags.router)
    app.include_router(teams.router)
    app.include_router(ui_pages.router)
    app.include_router(ui_capture.router)
    app.include_router(ui_oversight.router)
    install_error_answers(app, page_error)
    settings = runtime.settings
    app.add_middleware(BodyLimit, limit=max(settings.max_api_body_bytes, settings.max_body_bytes))
    tracing.instrument_app(app)
    return app
