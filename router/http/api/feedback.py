"""`GET /api/v1/feedback`: dismissals with their reasons, for the teams that own the lessons."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from router.compose import Runtime
from router.http.api.placements import Values, filters_from
from router.http.errors import problem
from router.http.guard import policy
from router.reports.feedback import FeedbackService

router = APIRouter(prefix="/api/v1", tags=["adoption"])


@router.get("/feedback", response_model=list[dict[str, Any]], openapi_extra=policy(Permission.READ))
async def feedback(
    request: Request,
    owner: Annotated[str | None, Query(description="The team that owns the lessons.")] = None,
    team: Values = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Any:
    """Per lesson: how often it was dismissed as not applicable, each reason, and where."""
    try:
        wanted = filters_from(None, team, None, start, end)
    except ValueError as exc:
        return problem(422, str(exc))
    runtime: Runtime = request.app.state.runtime
    return await run_in_threadpool(FeedbackService(runtime.db).dismissals, owner, wanted)
