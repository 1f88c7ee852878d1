"""`/api/v1/lessons`: capture, review, publish, revise and retire lessons over HTTP."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.base import utcnow
from core.lesson import Applicability, Lesson, LessonForm, LessonStatus, Mandate
from router.compose import Runtime
from router.http.api import lessons_transfer as api_lessons_transfer
from router.http.api.schemas import (
    Approval,
    LessonChanges,
    LessonDetail,
    LessonDraft,
    LessonHit,
    LessonPage,
    RecurrenceView,
    RetiredLesson,
)
from router.http.errors import problem
from router.http.guard import Acting, policy
from router.lessons.service import LessonService
from store.search import SearchPage, SearchRequest
from store.search_query import MAX_QUERY_CHARS, QueryTooLongError

router = APIRouter(prefix="/api/v1/lessons", tags=["lessons"])
# Before `/{lesson_id}`, which would otherwise take `export` and `schema` for lesson ids.
router.include_router(api_lessons_transfer.router)


def _service(request: Request) -> LessonService:
    runtime: Runtime = request.app.state.runtime
    return LessonService(runtime.db)


@router.post("", response_model=Lesson, openapi_extra=policy(Permission.AUTHOR), status_code=201)
async def create(request: Request, draft: LessonDraft, actor: Acting) -> Lesson:
    """Capture a new draft lesson (version 1)."""
    body = draft.model_dump(exclude_unset=True)
    # Who captured it and when are the server's to say; the service sets them again.
    given = body.get("provenance")
    provenance = {**(given if isinstance(given, dict) else {})}
    provenance.update(captured_by=actor.id, captured_at=utcnow().isoformat())
    lesson = Lesson.model_validate(
        {**body, "provenance": provenance, "version": 1, "status": "draft", "review": None},
        strict=False,
    )
    return await run_in_threadpool(_service(request).create, lesson, actor)


Values = Annotated[list[str] | None, Query()]


def _page(page: SearchPage, request: SearchRequest) -> LessonPage:
    return LessonPage(
        q=request.text,
        total=page.total,
        offset=request.offset,
        limit=request.limit,
        next_offset=page.next_offset,
        facets=page.facets,
        hits=[
            LessonHit.model_validate({**dict(hit.lesson), "score": float(hit.score)})
            for hit in page.hits
        ],
    )


@router.get("", response_model=list[Lesson] | LessonPage, openapi_extra=policy(Permission.READ))
async def list_lessons(
    request: Request,
    status: Annotated[list[LessonStatus] | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, description="Search text.")] = None,
    tag: Values = None,
    service: Values = None,
    component: Values = None,
    mandate: Annotated[list[Mandate] | None, Query()] = None,
    form: Annotated[list[LessonForm] | None, Query()] = None,
    owner: Values = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
    offset: Annotated[int | None, Query(ge=0, le=100_000)] = None,
) -> Any:
    """Working copies of lessons by status; with `q` or any other filter, or a page window, a
    search page: hits best first, the total, facet counts over all hits and `next_offset`."""
    filters = {
        "tag": tag,
        "service": service,
        "component": component,
        "mandate": [m.value for m in mandate or ()],
        "form": [f.value for f in form or ()],
        "owner": owner,
    }
    if q is None and limit is None and offset is None and not any(filters.values()):
        if status is not None and len(status) > 1:
            return problem(422, "status: give one status, or search with q")
        found = await run_in_threadpool(_service(request).list, status[0] if status else None)
        return list(found)
    wanted = SearchRequest(
        text=q,
        filters={
            "status": [s.value for s in status or ()],
            **{name: values or [] for name, values in filters.items()},
        },
        limit=limit or 20,
        offset=offset or 0,
    )
    try:
        page = await run_in_threadpool(_service(request).search, wanted)
    except QueryTooLongError as exc:
        return problem(422, f"q: {exc}")
    return _page(page, wanted)


@router.get("/{lesson_id}", response_model=LessonDetail, openapi_extra=policy(Permission.READ))
async def show(lesson_id: str, request: Request) -> LessonDetail:
    """The working copy and the list of published versions."""
    lesson, versions = await run_in_threadpool(_service(request).get, lesson_id)
    return LessonDetail.model_validate({**dict(lesson), "published_versions": list(versions)})


@router.get(
    "/{lesson_id}/recurrences",
    response_model=list[RecurrenceView],
    openapi_extra=policy(Permission.READ),
)
async def list_recurrences(lesson_id: str, request: Request) -> list[RecurrenceView]:
    """Later incidents where the lesson applied: what matched, and what its placements did."""
    found = await run_in_threadpool(_service(request).recurrences, lesson_id)
    return [
        RecurrenceView.model_validate(
            {
                **dict(r),
                "placements": list(r.placements),
                "placed": r.placed,
                "placement_states": r.states,
            }
        )
        for r in found
    ]


@router.get(
    "/{lesson_id}/versions/{version}",
    response_model=Lesson,
    openapi_extra=policy(Permission.READ),
)
async def show_version(
    lesson_id: str, version: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request
) -> Lesson:
    """One published version, exactly as it was published."""
    return await run_in_threadpool(_service(request).version, lesson_id, version)


@router.patch("/{lesson_id}", response_model=Lesson, openapi_extra=policy(Permission.AUTHOR))
async def edit(lesson_id: str, request: Request, body: LessonChanges, actor: Acting) -> Lesson:
    """Change fields of a draft or a lesson in review (an edit withdraws any approval)."""
    changes = body.model_dump(exclude_unset=True)
    return await run_in_threadpool(_service(request).edit, lesson_id, changes, actor)


@router.post("/{lesson_id}/submit", response_model=Lesson, openapi_extra=policy(Permission.AUTHOR))
async def submit(lesson_id: str, request: Request, actor: Acting) -> Lesson:
    """Ask for review."""
    return await run_in_threadpool(_service(request).submit, lesson_id, actor)


@router.post("/{lesson_id}/approve", response_model=Lesson, openapi_extra=policy(Permission.REVIEW))
async def approve(
    lesson_id: str, request: Request, actor: Acting, body: Approval | None = None
) -> Lesson:
    """Record the transferability check: where it applies, exclusions, adaptations, mandate."""
    body = body or Approval()
    applicability = (
        Applicability.model_validate(body.applicability, strict=False)
        if body.applicability is not None
        else None
    )
    return await run_in_threadpool(
        _service(request).approve,
        lesson_id,
        actor,
        notes=body.notes,
        applicability=applicability,
        mandate=body.mandate,
    )


@router.post("/{lesson_id}/publish", response_model=Lesson, openapi_extra=policy(Permission.REVIEW))
async def publish(lesson_id: str, request: Request, actor: Acting) -> Lesson:
    """Freeze the approved lesson as a new immutable version."""
    return await run_in_threadpool(_service(request).publish, lesson_id, actor)


@router.post("/{lesson_id}/revise", response_model=Lesson, openapi_extra=policy(Permission.AUTHOR))
async def revise(lesson_id: str, request: Request, actor: Acting) -> Lesson:
    """Open the next version as a draft; the published one stays in force."""
    return await run_in_threadpool(_service(request).revise, lesson_id, actor)


@router.post(
    "/{lesson_id}/retire", response_model=RetiredLesson, openapi_extra=policy(Permission.AUTHOR)
)
async def retire(lesson_id: str, request: Request, actor: Acting) -> RetiredLesson:
    """Retire the lesson and withdraw its open placements."""
    lesson, withdrawn = await run_in_threadpool(_service(request).retire, lesson_id, actor)
    return RetiredLesson.model_validate({**dict(lesson), "withdrawn_placements": withdrawn})
