"""`/api/v1/reports/compliance`, `/api/v1/waivers`: the matrix, its evidence, exemptions."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.errors import describe_validation_error
from core.waiver import Waiver
from router.access.tokens import parse_expiry
from router.compose import Runtime
from router.http.api.placements import Values, filters_from
from router.http.api.schemas import ComplianceMatrix, Evidence
from router.http.errors import problem
from router.http.guard import Acting, policy
from router.reports.compliance import ComplianceService
from router.reports.evidence import EvidenceService

router = APIRouter(prefix="/api/v1", tags=["compliance"])
Day = Annotated[date | None, Query(description="A day (UTC); `to` is included.")]


def _db(request: Request) -> Any:
    runtime: Runtime = request.app.state.runtime
    return runtime.db


@router.get(
    "/reports/compliance", response_model=ComplianceMatrix, openapi_extra=policy(Permission.READ)
)
async def matrix(
    request: Request,
    lesson: Values = None,
    team: Values = None,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Any:
    """Mandated lessons × teams: each cell verified, acknowledged, open, overdue, dismissed,
    waived or not reached, with the placements behind it."""
    try:
        wanted = filters_from(lesson, team, None, start, end)
    except ValueError as exc:
        return problem(422, str(exc))
    found = await run_in_threadpool(ComplianceService(_db(request)).matrix, wanted)
    return found.as_dict()


@router.get(
    "/reports/compliance/evidence",
    response_model=Evidence,
    openapi_extra=policy(Permission.READ),
)
async def evidence(
    request: Request,
    lesson: Annotated[str, Query(description="The cell's lesson.")],
    team: Annotated[str, Query(description="The cell's team.")],
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Any:
    """One cell's evidence chain: lesson content hash → rule → placement → signals → audit."""
    try:
        wanted = filters_from([lesson], [team], None, start, end)
    except ValueError as exc:
        return problem(422, str(exc))

    def read() -> dict[str, Any]:
        db = _db(request)
        matrix = ComplianceService(db).matrix(wanted)
        cell = matrix.cells.get((lesson, team))
        if cell is None:
            return {"cell": None, "chains": []}
        chains, _ = EvidenceService(db).chains(matrix.counted([cell]))
        return {"cell": cell.as_dict(), "chains": chains}

    return await run_in_threadpool(read)


@router.get("/waivers", response_model=list[Waiver], openapi_extra=policy(Permission.READ))
async def list_waivers(request: Request) -> Any:
    """Every waiver, active or expired, oldest first."""
    found = await run_in_threadpool(ComplianceService(_db(request)).waivers)
    return list(found)


class WaiverRequest(BaseModel):
    """A waiver as a client asks for it; the approver is the caller."""

    model_config = ConfigDict(strict=True, extra="forbid")

    lesson: str = Field(min_length=1, max_length=200)
    team: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=4000)
    expires: str = Field(default="90d", description="90d, 12h or 30m; at most 366d.")
    work_item: str | None = Field(default=None, max_length=320)


@router.post(
    "/waivers",
    status_code=201,
    response_model=Waiver,
    openapi_extra=policy(Permission.WAIVE),
)
async def grant(request: Request, actor: Acting, body: WaiverRequest) -> Any:
    """Exempt a team (or one `work_item`) from a mandated lesson until `expires`; approved by
    the caller, audited."""
    try:
        lasts = parse_expiry(body.expires)
    except ValueError as exc:
        return problem(422, f"expires: {exc}")
    if lasts is None:
        return problem(422, "expires: a waiver always ends (at most 366d)")
    try:
        waiver = await run_in_threadpool(
            ComplianceService(_db(request)).waive,
            actor,
            body.lesson,
            body.team,
            body.reason,
            lasts,
            body.work_item,
        )
    except ValidationError as exc:
        return problem(422, describe_validation_error(exc))
    except ValueError as exc:
        return problem(422, str(exc))
    return waiver
