"""Dashboard pages: sign-in, overview, lessons, the review queue and one work item.

Every route declares its policy with `page_policy`, the same permission the matching API route
needs; the guard admits the session cookie (or the SSO proxy, or a bearer token) and checks the
form token of every change. Changes go through the same use cases as the API, so the same rules
hold (nobody approves their own capture, an owner edits only its teams' lessons).
"""

import difflib
import secrets
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.access import Permission, Principal
from core.adoption import REACHED, Tier
from core.base import utcnow
from core.errors import AuthenticationError
from core.lesson import Applicability, Lesson, LessonStatus, Mandate
from router.access.tokens import TokenService
from router.compose import Runtime
from router.http.guard import Access, Acting, page_policy
from router.http.session import CSRF_FIELD, Sessions
from router.http.ui import capture as ui_capture
from router.http.ui.charts import line_chart
from router.http.ui.render import STATIC, refusal, render, secured
from router.lessons.service import LessonService, check_author
from router.reports.adoption import Filters, ReportService
from router.reports.feedback import FeedbackService
from router.reports.flags import FlagService, Thresholds
from store import lessons as lessons_store
from store import outbox, tallies
from store.search import SearchRequest
from store.search_query import QueryTooLongError

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE = 20
LEDGER_PAGE = 50
FACETS = ("status", "mandate", "form", "owner", "tag", "service", "component")
STATIC_FILES = {
    "cairn.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _lessons(request: Request) -> LessonService:
    return LessonService(_runtime(request).db)


def _safe_next(target: str | None) -> str:
    """Only a dashboard path of this site (no scheme, no host, no `//`)."""
    if not target or not target.startswith("/ui") or target.startswith("//"):
        return "/ui/"
    if any(ch in target for ch in "\\\r\n\t") or "://" in target:
        return "/ui/"
    return target


def _form_text(form: Any, name: str, limit: int = 20_000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _form_list(form: Any, name: str) -> list[str]:
    """A comma- or line-separated form field as a list of non-empty items."""
    raw = _form_text(form, name).replace("\r", "\n").replace(",", "\n")
    return [part.strip() for part in raw.split("\n") if part.strip()]


# ---- static files and sign-in -------------------------------------------------------------


@router.get("/static/{name}", openapi_extra=page_policy(Access.PUBLIC))
async def static(name: str) -> Response:
    """The dashboard's own stylesheet and icon (no CDN: deployments are often offline)."""
    media = STATIC_FILES.get(name)
    if media is None:
        return secured(Response("not found", status_code=404, media_type="text/plain"))
    response = FileResponse(STATIC / name, media_type=media)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/sign-in", openapi_extra=page_policy(Access.PUBLIC))
async def sign_in_form(
    request: Request, why: str | None = None, next: str | None = None
) -> Response:
    """The sign-in form: an API token, exchanged for a session cookie."""
    nonce = secrets.token_urlsafe(16)
    response = render(
        request,
        "signin.html",
        {"nonce": nonce, "next": _safe_next(next), "why": (why or "")[:200], "error": None},
    )
    sessions: Sessions = request.app.state.sessions
    sessions.remember_signin(response, request, nonce)
    return response


@router.post("/sign-in", openapi_extra=page_policy(Access.PUBLIC))
async def sign_in(request: Request) -> Response:
    """Check the token; on success set the session cookie and go where the person was going."""
    sessions: Sessions = request.app.state.sessions
    guard = request.app.state.guard
    client = request.client.host if request.client else "unknown"
    try:
        form: Any = await request.form()
    except Exception:
        form = {}
    target = _safe_next(_form_text(form, "next", 2000))

    def again(reason: str, status: int) -> Response:
        nonce = secrets.token_urlsafe(16)
        response = render(
            request,
            "signin.html",
            {"nonce": nonce, "next": target, "why": "", "error": reason},
            status=status,
        )
        sessions.remember_signin(response, request, nonce)
        return response

    if not sessions.signin_nonce_holds(request, form.get(CSRF_FIELD)):
        return again("The sign-in form had expired; try again.", 400)
    wait = guard.limiter.retry_after(client)
    if wait is not None:
        response = again("Too many failed sign-ins; wait a minute and try again.", 429)
        response.headers["Retry-After"] = str(wait)
        return response
    token = _form_text(form, "token", 200).strip()
    service = TokenService(_runtime(request).db)
    guard.limiter.failed(client)
    try:
        await run_in_threadpool(service.authenticate, token)
        token_id = service.token_id(token)
    except AuthenticationError:
        return again("That token is not valid, or it has expired or been revoked.", 401)
    guard.limiter.refund(client)
    response = RedirectResponse(target, status_code=303)
    sessions.start(response, request, token_id)
    return secured(response)


@router.post("/sign-out", openapi_extra=page_policy(Access.AUTHENTICATED))
async def sign_out(_actor: Acting) -> Response:
    """End the session (the token itself stays valid until it is revoked)."""
    response = RedirectResponse("/ui/sign-in", status_code=303)
    Sessions.end(response)
    return secured(response)


# ---- overview -----------------------------------------------------------------------------


def _weeks(since: date, until: date) -> list[str]:
    weeks: list[str] = []
    day = since
    while day <= until:
        year, week, _ = day.isocalendar()
        label = f"{year}-W{week:02d}"
        if not weeks or weeks[-1] != label:
            weeks.append(label)
        day += timedelta(days=1)
    return weeks


def _overview(runtime: Runtime, principal: Principal, weeks: int) -> dict[str, Any]:
    now = utcnow()
    today = now.date()
    since = today - timedelta(weeks=weeks)
    # Counts per week and tier only: the page shows a trend and totals, no medians.
    reports = ReportService(runtime.db)
    period = Filters(since=tallies.start_of(since))  # whole days: read from the tallies
    by_week = reports.weekly(period, now)
    recurrence, not_honoured = reports.recurrences(period, now)
    counts = {t.value: sum(w.get(t.value, 0) for w in by_week.values()) for t in Tier}
    total = {"reach": sum(counts[t.value] for t in REACHED), "counts": counts}
    labels = _weeks(since, today)
    done = (Tier.ACKNOWLEDGED.value, Tier.VERIFIED.value)
    series = {
        "placed": [sum(by_week.get(week, {}).values()) for week in labels],
        "acknowledged": [sum(by_week.get(week, {}).get(t, 0) for t in done) for week in labels],
        "verified": [by_week.get(week, {}).get(Tier.VERIFIED.value, 0) for week in labels],
    }
    chart = line_chart(labels, series, "Placed, acknowledged and verified per week")
    settings = runtime.settings
    flags = FlagService(
        runtime.db, Thresholds(settings.flag_precision_below, settings.flag_min_outcomes)
    ).listed(open_only=True)
    with runtime.db.transaction() as session:
        due = lessons_store.due_for_review(session, today + timedelta(days=30))
    queue = None
    if principal.can(Permission.OPERATE):
        with runtime.db.transaction() as session:
            queue = {"counts": outbox.counts(session), "dead": len(outbox.dead_letters(session))}
    return {
        "weeks": weeks,
        "since": since,
        "trend_chart": chart,
        "table": [(week, *(series[name][i] for name in series)) for i, week in enumerate(labels)],
        "total": total,
        "recurrence": recurrence,
        "not_honoured": not_honoured[:20],
        "flags": flags,
        "due": due[:20],
        "due_total": len(due),
        "today": today,
        "queue": queue,
    }


@router.get("/", openapi_extra=page_policy(Permission.READ))
async def overview(
    request: Request, actor: Acting, weeks: Annotated[int, Query(ge=1, le=104)] = 12
) -> Response:
    """Adoption over time, recurrences, flags, lessons due for review, queue health."""
    data = await run_in_threadpool(_overview, _runtime(request), actor, weeks)
    return render(request, "overview.html", data, section="overview")


# ---- lessons ------------------------------------------------------------------------------


@router.get("/lessons", openapi_extra=page_policy(Permission.READ))
async def lessons(
    request: Request,
    q: Annotated[str | None, Query(max_length=500)] = None,
    page: Annotated[int, Query(ge=1, le=5000)] = 1,
) -> Response:
    """Search lessons with the same facets as the API."""
    params = request.query_params
    filters = {
        facet: [v[:200] for v in params.getlist(facet)][:20]
        for facet in FACETS
        if params.getlist(facet)
    }
    wanted = SearchRequest(text=q or None, filters=filters, limit=PAGE, offset=(page - 1) * PAGE)
    error = None
    found = None
    try:
        found = await run_in_threadpool(_lessons(request).search, wanted)
    except (QueryTooLongError, ValueError) as exc:
        error = str(exc)
    chosen = [(facet, value) for facet, values in filters.items() for value in values]
    return render(
        request,
        "lessons.html",
        {
            "q": q or "",
            "page": page,
            "found": found,
            "error": error,
            "chosen": chosen,
            "facets": FACETS,
            "pages": 0 if found is None else -(-found.total // PAGE),
        },
        section="lessons",
    )


def _lines(lesson: Lesson) -> list[str]:
    """A lesson version as text lines, for the diff between versions."""
    a = lesson.applicability
    lines = [
        f"title: {lesson.title}",
        f"statement: {lesson.statement}",
        f"mandate: {lesson.mandate.value}",
        f"form: {lesson.form.value}",
        f"owner: {lesson.owner}",
        f"review by: {lesson.review_by or '-'}",
        f"what happened: {lesson.context.what_happened}",
        f"expected: {lesson.context.expected}",
        f"actual: {lesson.context.actual}",
        *(f"contributing: {c}" for c in lesson.context.contributing_conditions),
        *(f"applies to services: {', '.join(a.services)}" for _ in [0] if a.services),
        *(f"applies to teams: {', '.join(a.teams)}" for _ in [0] if a.teams),
        *(f"applies to repos: {', '.join(a.repos)}" for _ in [0] if a.repos),
        *(f"applies to paths: {', '.join(a.paths)}" for _ in [0] if a.paths),
        *(f"applies to tags: {', '.join(a.tags)}" for _ in [0] if a.tags),
        f"adaptation: {a.adaptation_notes}",
        *(f"checklist {item.id}: {item.text}" for item in lesson.checklist),
        *(f"evidence: {link}" for link in lesson.provenance.evidence_links),
    ]
    return [line.replace("\n", " ") for line in lines]


def _diff(older: Lesson, newer: Lesson) -> list[tuple[str, str]]:
    """(kind, line) pairs of a unified diff: `add`, `del`, `ctx` or `hunk`."""
    out: list[tuple[str, str]] = []
    for line in difflib.unified_diff(_lines(older), _lines(newer), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "ctx")
        out.append((kind, line))
    return out


def _lesson_page(
    runtime: Runtime, lesson_id: str, older: int | None, newer: int | None, offset: int
) -> dict[str, Any]:
    service = LessonService(runtime.db)
    lesson, versions = service.get(lesson_id)
    diff = None
    if versions:
        b = newer if newer in versions else versions[-1]
        a = older if older in versions else (versions[-2] if len(versions) > 1 else None)
        if a is not None and a != b:
            diff = {
                "a": a,
                "b": b,
                "lines": _diff(service.version(lesson_id, a), service.version(lesson_id, b)),
            }
    reports = ReportService(runtime.db)
    of_lesson = Filters(lessons=[lesson_id])
    tiers = reports.tier_counts(None, of_lesson).get(None, {})
    placed = reports.newest(of_lesson, LEDGER_PAGE, offset)
    feedback = [
        row
        for row in FeedbackService(runtime.db).dismissals(
            lesson.owner, Filters(lessons=[lesson_id])
        )
        if row["lesson"] == lesson_id
    ]
    return {
        "lesson": lesson,
        "versions": versions,
        "diff": diff,
        "placements": placed,
        "placements_total": sum(tiers.values()),
        "offset": offset,
        "ledger_page": LEDGER_PAGE,
        "tiers": tiers,
        "recurrences": service.recurrences(lesson_id),
        "feedback": feedback,
        "today": utcnow().date(),
    }


@router.get("/lessons/{lesson_id}", openapi_extra=page_policy(Permission.READ))
async def lesson(
    request: Request,
    lesson_id: Annotated[str, Path(max_length=200)],
    a: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    b: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """A lesson: provenance, context, applicability, versions with a diff, placements with
    their tiers and signals, recurrences, feedback and its review-by date."""
    data = await run_in_threadpool(_lesson_page, _runtime(request), lesson_id, a, b, offset)
    return render(request, "lesson.html", data, section="lessons")


# ---- review queue -------------------------------------------------------------------------


def _queue(runtime: Runtime) -> dict[str, Any]:
    service = LessonService(runtime.db)
    in_review, drafts = service.list(LessonStatus.IN_REVIEW), service.list(LessonStatus.DRAFT)
    checks = ui_capture.review_service(runtime)
    return {
        "in_review": in_review,
        "drafts": drafts,
        "mandates": [m.value for m in Mandate],
        "checks": {lesson.id: checks.report(lesson.id) for lesson in (*in_review, *drafts)},
    }


@router.get("/review", openapi_extra=page_policy(Permission.READ))
async def review(request: Request, done: str | None = None) -> Response:
    """Drafts and lessons in review, with the actions the signed-in person may take."""
    data = await run_in_threadpool(_queue, _runtime(request))
    notice = {
        "approved": "Approved.",
        "published": "Published.",
        "submitted": "Submitted for review.",
        "saved": "Saved.",
        "redacted": "Redacted: the original is kept in the restricted provenance.",
        "kept": "Kept: it will be published as written.",
    }.get(done or "")
    return render(request, "review.html", {**data, "notice": notice}, section="review")


def _applicability(form: Any) -> Applicability:
    return Applicability.model_validate(
        {
            "services": _form_list(form, "services"),
            "components": _form_list(form, "components"),
            "repos": _form_list(form, "repos"),
            "paths": _form_list(form, "paths"),
            "teams": _form_list(form, "teams"),
            "tags": _form_list(form, "tags"),
            "adaptation_notes": _form_text(form, "adaptation_notes"),
            "exclusions": {
                "services": _form_list(form, "exclude_services"),
                "teams": _form_list(form, "exclude_teams"),
            },
        },
        strict=False,
    )


@router.post("/lessons/{lesson_id}/approve", openapi_extra=page_policy(Permission.REVIEW))
async def approve(request: Request, lesson_id: str, actor: Acting) -> Response:
    """Record the transferability check (where it applies, mandate) from the review page."""
    form = await request.form()
    mandate_text = _form_text(form, "mandate")
    try:
        mandate = Mandate(mandate_text) if mandate_text else None
    except ValueError:
        return refusal(request, 422, "unknown mandate")
    applicability = _applicability(form)
    await run_in_threadpool(
        _lessons(request).approve,
        lesson_id,
        actor,
        notes=_form_text(form, "notes"),
        applicability=applicability,
        mandate=mandate,
    )
    return RedirectResponse("/ui/review?done=approved", status_code=303)


@router.post("/lessons/{lesson_id}/publish", openapi_extra=page_policy(Permission.REVIEW))
async def publish(request: Request, lesson_id: str, actor: Acting) -> Response:
    """Publish an approved lesson as its next version."""
    await run_in_threadpool(_lessons(request).publish, lesson_id, actor)
    return RedirectResponse(f"/ui/lessons/{lesson_id}", status_code=303)


@router.post("/lessons/{lesson_id}/submit", openapi_extra=page_policy(Permission.AUTHOR))
async def submit(request: Request, lesson_id: str, actor: Acting) -> Response:
    """Ask for review."""
    await run_in_threadpool(_lessons(request).submit, lesson_id, actor)
    return RedirectResponse("/ui/review?done=submitted", status_code=303)


@router.get("/lessons/{lesson_id}/edit", openapi_extra=page_policy(Permission.AUTHOR))
async def edit_form(request: Request, lesson_id: str, actor: Acting) -> Response:
    """The edit form of a draft or a lesson in review."""
    lesson, _ = await run_in_threadpool(_lessons(request).get, lesson_id)
    check_author(actor, lesson.owner)
    return render(request, "edit.html", {"lesson": lesson}, section="review")


@router.post("/lessons/{lesson_id}/edit", openapi_extra=page_policy(Permission.AUTHOR))
async def edit(request: Request, lesson_id: str, actor: Acting) -> Response:
    """Save the edit form (an edit in review withdraws any approval)."""
    form = await request.form()
    review_by = _form_text(form, "review_by").strip()
    changes: dict[str, Any] = {
        "title": _form_text(form, "title").strip(),
        "statement": _form_text(form, "statement").strip(),
        "context": {
            "what_happened": _form_text(form, "what_happened"),
            "expected": _form_text(form, "expected"),
            "actual": _form_text(form, "actual"),
            "contributing_conditions": [
                line.strip()
                for line in _form_text(form, "contributing_conditions").splitlines()
                if line.strip()
            ],
        },
        "review_by": review_by or None,
    }
    await run_in_threadpool(_lessons(request).edit, lesson_id, changes, actor)
    return RedirectResponse("/ui/review?done=saved", status_code=303)


# ---- one work item ------------------------------------------------------------------------


def _work(runtime: Runtime, ref: str) -> dict[str, Any]:
    placed = ReportService(runtime.db).assessed(Filters(work_items=[ref]))
    return {"ref": ref, "placements": placed, "tiers": [t.value for t in Tier]}


@router.get("/work/{ref:path}", openapi_extra=page_policy(Permission.READ))
async def work(request: Request, ref: Annotated[str, Path(max_length=320)]) -> Response:
    """The lessons placed in one work item (where a grouped checklist item links to)."""
    data = await run_in_threadpool(_work, _runtime(request), ref)
    return render(request, "work.html", data, section="lessons")
