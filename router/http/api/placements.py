"""`/api/v1/placements`: the ledger of placed lessons, filtered and paged, with their signals."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.adoption import Tier
from core.placement import PlacementState, Signal
from router.compose import Runtime
from router.http.api.schemas import PlacementDetail, PlacementPage
from router.http.errors import problem
from router.http.guard import policy
from router.reports.adoption import Filters, ReportService
from router.reports.period import period

router = APIRouter(prefix="/api/v1/placements", tags=["adoption"])
Values = Annotated[list[str] | None, Query()]


def _service(request: Request) -> ReportService:
    runtime: Runtime = request.app.state.runtime
    return ReportService(runtime.db)


def filters_from(
    lesson: list[str] | None,
    team: list[str] | None,
    repository: list[str] | None,
    start: date | None,
    end: date | None,
    *,
    state: list[PlacementState] | None = None,
    tier: list[Tier] | None = None,
    work_item: list[str] | None = None,
) -> Filters:
    """Query parameters as report filters (ValueError for a period that ends before it starts)."""
    since, until = period(start, end)
    return Filters(
        lessons=lesson or (),
        teams=team or (),
        projects=repository or (),
        states=state or (),
        tiers=tier or (),
        since=since,
        until=until,
        work_items=work_item or (),
    )


@router.get("", response_model=PlacementPage, openapi_extra=policy(Permission.READ))
async def list_placements(
    request: Request,
    work_item: Annotated[
        list[str] | None, Query(description="A work item ref such as github:acme/api#12")
    ] = None,
    lesson: Values = None,
    team: Values = None,
    repository: Annotated[
        list[str] | None, Query(description="A GitHub owner/repo or a Jira project key.")
    ] = None,
    state: Annotated[list[PlacementState] | None, Query()] = None,
    tier: Annotated[list[Tier] | None, Query()] = None,
    start: Annotated[date | None, Query(alias="from", description="First day (UTC).")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day, included.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """Placements oldest first, each with its adoption tier, team and project; paged."""
    try:
        wanted = filters_from(
            lesson, team, repository, start, end, state=state, tier=tier, work_item=work_item
        )
    except ValueError as exc:
        return problem(422, str(exc))
    found = await run_in_threadpool(_service(request).assessed, wanted)
    page = found[offset : offset + limit]
    return {
        "total": len(found),
        "offset": offset,
        "limit": limit,
        "next_offset": offset + limit if offset + limit < len(found) else None,
        "items": [item.as_dict() for item in page],
    }


@router.get(
    "/{placement_id}", response_model=PlacementDetail, openapi_extra=policy(Permission.READ)
)
async def show(placement_id: str, request: Request) -> Any:
    """One placement with its tier and its signals."""
    found = await run_in_threadpool(_service(request).placement, placement_id)
    return {**found.as_dict(), "signals": list(found.entry.signals)}


@router.get(
    "/{placement_id}/signals",
    response_model=list[Signal],
    openapi_extra=policy(Permission.READ),
)
async def signals(placement_id: str, request: Request) -> list[Signal]:
    """What came back about one placement: each signal with its delivery id and time."""
    found = await run_in_threadpool(_service(request).placement, placement_id)
    return list(found.entry.signals)
