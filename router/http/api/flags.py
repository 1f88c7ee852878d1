"""`/api/v1/flags`: rules and lessons flagged for revision, evaluated and cleared."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from router.compose import Runtime
from router.http.api.schemas import Flag as FlagView
from router.http.guard import Acting, policy
from router.reports.flags import FlagService, Thresholds
from store.flags import Flag

router = APIRouter(prefix="/api/v1/flags", tags=["adoption"])


def _service(request: Request) -> FlagService:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    return FlagService(
        runtime.db, Thresholds(settings.flag_precision_below, settings.flag_min_outcomes)
    )


def _json(flag: Flag) -> dict[str, Any]:
    return {
        "kind": flag.kind,
        "subject": flag.subject,
        "flagged_at": flag.flagged_at.isoformat(),
        "measured": flag.measured,
        "open": flag.open,
        "cleared_at": None if flag.cleared_at is None else flag.cleared_at.isoformat(),
        "cleared_by": flag.cleared_by,
    }


@router.get("", response_model=list[FlagView], openapi_extra=policy(Permission.READ))
async def list_flags(
    request: Request, open_only: Annotated[bool, Query(alias="open")] = False
) -> Any:
    """Flags, newest first (`open=true`: only those nobody has cleared)."""
    found = await run_in_threadpool(_service(request).listed, open_only=open_only)
    return [_json(flag) for flag in found]


@router.post(
    "/evaluate", response_model=list[dict[str, Any]], openapi_extra=policy(Permission.OPERATE)
)
async def evaluate(request: Request, actor: Acting) -> Any:
    """Measure every rule and lesson now; returns the flags raised by this evaluation."""
    return await run_in_threadpool(_service(request).evaluate, actor)


@router.post(
    "/{kind}/{subject:path}/clear",
    response_model=FlagView,
    openapi_extra=policy(Permission.OPERATE),
)
async def clear(
    request: Request,
    actor: Acting,
    kind: Annotated[str, Path(pattern="^(rule|lesson)$")],
    subject: str,
) -> Any:
    """Clear an open flag once the rule or lesson was revised, or judged fine as it is."""
    cleared = await run_in_threadpool(_service(request).clear, actor, kind, subject)
    return _json(cleared)
