"""Operations endpoints: `/healthz`, `/readyz` (database and transport usable), `/metrics`."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from router.compose import Runtime
from router.http.api.schemas import Health, Readiness
from router.http.guard import Access, policy
from router.metrics import render

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, openapi_extra=policy(Access.PUBLIC))
async def healthz() -> dict[str, str]:
    """Liveness: answers while the event loop runs."""
    return {"status": "ok"}


def _database_problem(runtime: Runtime) -> str | None:
    try:
        with runtime.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}"
    return None


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the failing check says why."}},
    openapi_extra=policy(Access.PUBLIC),
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and the transport can move messages."""
    runtime: Runtime = request.app.state.runtime
    checks = {
        "database": await run_in_threadpool(_database_problem, runtime),
        "transport": await runtime.transport.problem(),
    }
    ready = all(problem is None for problem in checks.values())
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "mode": runtime.transport.mode,
            "checks": {name: problem or "ok" for name, problem in checks.items()},
        },
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    openapi_extra=policy(Access.METRICS),
)
async def metrics(request: Request) -> Response:
    """Prometheus exposition: deliveries, pipeline outcomes, outbox messages by status.

    With CAIRN_METRICS_TOKEN set, scrapers send it as a bearer token."""
    runtime: Runtime = request.app.state.runtime
    body = await run_in_threadpool(render, runtime.db, runtime.rules)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
