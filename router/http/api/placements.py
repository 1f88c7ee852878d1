"""`GET /api/v1/placements`: what Cairn placed in a work item."""

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from router.compose import Runtime
from router.http.guard import policy
from store import placements

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.get("/placements", openapi_extra=policy(Permission.READ))
async def list_placements(
    request: Request,
    work_item: str = Query(description="A work item ref such as github:acme/api#12"),
) -> list[dict[str, Any]]:
    """Placements in one work item, each with the rule and rule-set version that made it."""
    runtime: Runtime = request.app.state.runtime

    def read() -> list[dict[str, Any]]:
        with runtime.db.transaction() as session:
            found = placements.for_work_item(session, work_item)
            return [p.model_dump(mode="json") for p in found]

    return await run_in_threadpool(read)
