"""`/api/v1/lessons/{id}/findings` and `/restricted`: blameless review of captured drafts.

Every reader sees a draft's findings (names, @-mentions, blame phrasing) and weak-capture
warnings; reviewers redact or keep each finding with one request; the restricted provenance
(who the sources name, the redacted originals) answers only owners of the lesson's team and
admins.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.blameless import Decision
from router.compose import Runtime
from router.http.guard import Acting, policy
from router.lessons.findings import CaptureReview, Weak

router = APIRouter(prefix="/api/v1/lessons", tags=["capture"])

FindingId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[a-z]+-[0-9a-f]{12}$")]


def _review(request: Request) -> CaptureReview:
    runtime: Runtime = request.app.state.runtime
    settings = runtime.settings
    weak = Weak(
        min_statement=settings.capture_min_statement_chars,
        slogans=settings.listed(settings.capture_slogans),
    )
    return CaptureReview(runtime.db, weak)


@router.get("/{lesson_id}/findings", openapi_extra=policy(Permission.READ))
async def findings(lesson_id: str, request: Request) -> dict[str, Any]:
    """Findings (open or kept), reviewers' decisions, weak-capture warnings, sources read."""
    return await run_in_threadpool(_review(request).report, lesson_id)


@router.post("/{lesson_id}/findings/{finding_id}/redact", openapi_extra=policy(Permission.REVIEW))
async def redact(
    lesson_id: str, finding_id: FindingId, request: Request, actor: Acting
) -> dict[str, Any]:
    """Replace the finding's text in every field; the original is kept only in the restricted
    provenance."""
    return await run_in_threadpool(
        _review(request).decide, lesson_id, finding_id, Decision.REDACTED, actor
    )


@router.post("/{lesson_id}/findings/{finding_id}/keep", openapi_extra=policy(Permission.REVIEW))
async def keep(
    lesson_id: str, finding_id: FindingId, request: Request, actor: Acting
) -> dict[str, Any]:
    """Keep the finding's text on purpose: it may then be published and placed."""
    return await run_in_threadpool(
        _review(request).decide, lesson_id, finding_id, Decision.KEPT, actor
    )


@router.get("/{lesson_id}/restricted", openapi_extra=policy(Permission.AUTHOR))
async def restricted(lesson_id: str, request: Request, actor: Acting) -> dict[str, Any]:
    """The restricted provenance (owners of the lesson's team and admins only)."""
    return await run_in_threadpool(_review(request).restricted, lesson_id, actor)
