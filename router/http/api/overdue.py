"""`GET /api/v1/reports/overdue?owner=TEAM`: the overdue digest of the lessons a team owns."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.overdue import OverdueDigest
from router.compose import Runtime
from router.http.guard import policy
from router.overdue import digest

router = APIRouter(prefix="/api/v1/reports", tags=["adoption"])


@router.get("/overdue", openapi_extra=policy(Permission.READ))
async def overdue(
    request: Request,
    owner: Annotated[str, Query(min_length=1, max_length=200, description="The owner team.")],
) -> OverdueDigest:
    """The overdue placements of `owner`'s lessons, longest overdue first: lesson, team and work
    item, due date, whole days overdue, and whether (and when) it was reminded."""
    runtime: Runtime = request.app.state.runtime
    return await run_in_threadpool(digest, runtime.db, owner)
