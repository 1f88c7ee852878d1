"""`/api/v1/lessons/export|import|schema`: lessons in and out as YAML or JSON files."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.lesson import LessonStatus
from router.compose import Runtime
from router.http.api.schemas import ImportReport
from router.http.guard import Acting, policy
from router.lessons import file as lessons_file
from router.lessons import transfer as lessons_transfer
from router.lessons.file import LessonFileError
from router.lessons.transfer import ImportConflictError

router = APIRouter()
MAX_IMPORT_BYTES = 10 * 1024 * 1024
IMPORT_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/schema", openapi_extra=policy(Permission.READ))
async def file_schema() -> dict[str, Any]:
    """The JSON Schema of an export file; each entry is a Lesson."""
    return lessons_file.schema()


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {
            "description": "The export file (`format=yaml`: YAML).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "object"}},
            },
        }
    },
    openapi_extra=policy(Permission.READ),
)
async def export(
    request: Request,
    status: LessonStatus | None = None,
    kind: Annotated[Literal["json", "yaml"], Query(alias="format")] = "json",
) -> Response:
    """Every lesson (or those with `status`) as an export file."""
    entries = await run_in_threadpool(lessons_transfer.export, _runtime(request).db, status)
    text = lessons_file.dump(entries, kind)
    media = "application/json" if kind == "json" else "application/yaml"
    return Response(text, media_type=media)


@router.post(
    "/import",
    response_model=ImportReport,
    openapi_extra={
        **policy(Permission.IMPORT, accepts=IMPORT_TYPES),
        "requestBody": {
            "required": True,
            "description": "An export file: JSON, or YAML with a YAML content type.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "string"}},
            },
        },
    },
)
async def import_file(
    request: Request,
    actor: Acting,
    dry_run: Annotated[bool, Query(description="Check and report; write nothing.")] = False,
    trust_reviews: Annotated[
        bool, Query(description="Keep published entries that carry no review record published.")
    ] = False,
) -> Any:
    """Import an export file (JSON, or YAML with a YAML content type): all entries or none."""
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        return JSONResponse({"status": "rejected", "reason": "file too large"}, 413)
    kind: lessons_file.Kind = (
        "yaml" if "yaml" in request.headers.get("content-type", "") else "json"
    )
    try:
        entries = lessons_file.load(body.decode("utf-8", errors="replace"), "body", kind)
        report = await run_in_threadpool(
            lessons_transfer.import_lessons,
            _runtime(request).db,
            entries,
            actor,
            source="api",
            dry_run=dry_run,
            trust_reviews=trust_reviews,
        )
    except LessonFileError as exc:
        problems = [str(p) for p in exc.problems]
        return JSONResponse({"status": "rejected", "reason": problems[0], "errors": problems}, 422)
    except ImportConflictError as exc:
        conflicts = list(exc.conflicts)
        return JSONResponse(
            {"status": "rejected", "reason": conflicts[0], "conflicts": conflicts}, 409
        )
    return {
        "dry_run": report.dry_run,
        "changed": report.changed,
        "summary": report.summary(),
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
    }
