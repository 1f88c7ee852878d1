"""Dashboard actions on a draft's blameless findings: redact or keep one, with the form token."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.blameless import Decision
from router.compose import Runtime
from router.http.guard import Acting, page_policy
from router.lessons.findings import CaptureReview, Weak

router = APIRouter(prefix="/ui", include_in_schema=False)

FindingId = Annotated[str, Path(max_length=200, pattern=r"^[a-z]+-[0-9a-f]{12}$")]


def review_service(runtime: Runtime) -> CaptureReview:
    """Findings and warnings with the configured weak-capture thresholds."""
    settings = runtime.settings
    weak = Weak(
        min_statement=settings.capture_min_statement_chars,
        slogans=settings.listed(settings.capture_slogans),
    )
    return CaptureReview(runtime.db, weak)


async def _decide(
    request: Request, lesson_id: str, finding_id: str, decision: Decision, actor: Acting
) -> Response:
    runtime: Runtime = request.app.state.runtime
    await run_in_threadpool(review_service(runtime).decide, lesson_id, finding_id, decision, actor)
    return RedirectResponse(f"/ui/review?done={decision.value}", status_code=303)


@router.post(
    "/lessons/{lesson_id}/findings/{finding_id}/redact",
    openapi_extra=page_policy(Permission.REVIEW),
)
async def redact(
    request: Request, lesson_id: str, finding_id: FindingId, actor: Acting
) -> Response:
    """Redact the finding's text in every field (the original stays restricted)."""
    return await _decide(request, lesson_id, finding_id, Decision.REDACTED, actor)


@router.post(
    "/lessons/{lesson_id}/findings/{finding_id}/keep", openapi_extra=page_policy(Permission.REVIEW)
)
async def keep(request: Request, lesson_id: str, finding_id: FindingId, actor: Acting) -> Response:
    """Keep the finding's text on purpose."""
    return await _decide(request, lesson_id, finding_id, Decision.KEPT, actor)
