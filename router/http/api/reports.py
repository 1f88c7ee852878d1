"""`/api/v1/reports/…`: adoption, computed from the placements and signals recorded."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from router.compose import Runtime
from router.http.api.placements import Values, filters_from
from router.http.api.schemas import AdoptionReport
from router.http.errors import problem
from router.http.guard import policy
from router.reports.adoption import GroupBy, ReportService

router = APIRouter(prefix="/api/v1/reports", tags=["adoption"])


@router.get("/adoption", response_model=AdoptionReport, openapi_extra=policy(Permission.READ))
async def adoption(
    request: Request,
    by: GroupBy = GroupBy.LESSON,
    lesson: Values = None,
    team: Values = None,
    repository: Values = None,
    start: Annotated[date | None, Query(alias="from", description="First day (UTC).")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day, included.")] = None,
) -> Any:
    """Reach, each tier's count and rate, dismissals by reason, median hours to acknowledge and
    to verify, placed / acknowledged / verified per week, checkbox theatre, and recurrences
    (placed before? honoured?), for each group and in total; then each recurrence whose lesson
    was placed but not honoured before the incident."""
    try:
        wanted = filters_from(lesson, team, repository, start, end)
    except ValueError as exc:
        return problem(422, str(exc))
    runtime: Runtime = request.app.state.runtime
    found = await run_in_threadpool(ReportService(runtime.db).report, by, wanted)
    return {
        **found.as_dict(),
        "from": None if start is None else start.isoformat(),
        "to": None if end is None else end.isoformat(),
    }
