"""`/api/v1/lessons`: capture, review, publish, revise and retire lessons over HTTP."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from core.errors import ConflictError, NotFoundError, describe_validation_error
from core.lesson import Applicability, Lesson, LessonStatus, Mandate
from router.compose import Runtime
from router.lessons_service import LessonService

router = APIRouter(prefix="/api/v1/lessons", tags=["lessons"])

Actor = Annotated[
    str, Header(alias="X-Cairn-Actor", description="Who is acting (recorded in the audit log).")
]
JsonBody = Annotated[dict[str, Any], Body()]


def _service(request: Request) -> LessonService:
    runtime: Runtime = request.app.state.runtime
    return LessonService(runtime.db)


def _problem(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


def install_error_answers(app: FastAPI) -> None:
    """The one place that turns Cairn's errors raised by API handlers into HTTP answers."""

    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return _problem(404, str(exc))
        if isinstance(exc, ValidationError):
            return _problem(422, describe_validation_error(exc))
        return _problem(409, str(exc))

    for error in (NotFoundError, ConflictError, ValidationError):
        app.add_exception_handler(error, answer)


def _json(lesson: Lesson, **extra: Any) -> dict[str, Any]:
    return {**lesson.model_dump(mode="json"), **extra}


@router.post("", status_code=201)
async def create(request: Request, body: JsonBody, actor: Actor = "api") -> Any:
    """Capture a new draft lesson (version 1)."""
    lesson = Lesson.model_validate(
        {**body, "version": 1, "status": "draft", "review": None}, strict=False
    )
    result = await run_in_threadpool(_service(request).create, lesson, actor)
    return JSONResponse(_json(result), 201)


@router.get("")
async def list_lessons(request: Request, status: LessonStatus | None = None) -> Any:
    """Working copies of lessons, optionally by status."""
    found = await run_in_threadpool(_service(request).list, status)
    return [_json(lesson) for lesson in found]


@router.get("/{lesson_id}")
async def show(lesson_id: str, request: Request) -> Any:
    """The working copy and the list of published versions."""
    result = await run_in_threadpool(_service(request).get, lesson_id)
    lesson, versions = result
    return _json(lesson, published_versions=versions)


@router.get("/{lesson_id}/versions/{version}")
async def show_version(lesson_id: str, version: int, request: Request) -> Any:
    """One published version, exactly as it was published."""
    result = await run_in_threadpool(_service(request).version, lesson_id, version)
    return _json(result)


@router.patch("/{lesson_id}")
async def edit(lesson_id: str, request: Request, body: JsonBody, actor: Actor = "api") -> Any:
    """Change fields of a draft or a lesson in review (an edit withdraws any approval)."""
    result = await run_in_threadpool(_service(request).edit, lesson_id, body, actor)
    return _json(result)


@router.post("/{lesson_id}/submit")
async def submit(lesson_id: str, request: Request, actor: Actor = "api") -> Any:
    """Ask for review."""
    result = await run_in_threadpool(_service(request).submit, lesson_id, actor)
    return _json(result)


@router.post("/{lesson_id}/approve")
async def approve(
    lesson_id: str,
    request: Request,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    actor: Actor = "api",
) -> Any:
    """Record the transferability check: where it applies, exclusions, adaptations, mandate."""
    body = body or {}
    applicability = (
        Applicability.model_validate(body["applicability"], strict=False)
        if body.get("applicability") is not None
        else None
    )
    try:
        mandate = Mandate(body["mandate"]) if body.get("mandate") is not None else None
    except ValueError as exc:
        return _problem(422, f"mandate: {exc}")
    result = await run_in_threadpool(
        _service(request).approve,
        lesson_id,
        actor,
        notes=str(body.get("notes", "")),
        applicability=applicability,
        mandate=mandate,
    )
    return _json(result)


@router.post("/{lesson_id}/publish")
async def publish(lesson_id: str, request: Request, actor: Actor = "api") -> Any:
    """Freeze the approved lesson as a new immutable version."""
    result = await run_in_threadpool(_service(request).publish, lesson_id, actor)
    return _json(result)


@router.post("/{lesson_id}/revise")
async def revise(lesson_id: str, request: Request, actor: Actor = "api") -> Any:
    """Open the next version as a draft; the published one stays in force."""
    result = await run_in_threadpool(_service(request).revise, lesson_id, actor)
    return _json(result)


@router.post("/{lesson_id}/retire")
async def retire(lesson_id: str, request: Request, actor: Actor = "api") -> Any:
    """Retire the lesson and withdraw its open placements."""
    result = await run_in_threadpool(_service(request).retire, lesson_id, actor)
    lesson, withdrawn = result
    return _json(lesson, withdrawn_placements=withdrawn)
