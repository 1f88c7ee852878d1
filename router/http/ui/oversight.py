"""Dashboard pages for oversight: the compliance matrix with its evidence, waivers and exports;
the rule set in force with per-rule precision, flags and a backtest form."""

import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from core.access import Permission
from core.adoption import REACHED, Tier, precision
from core.base import utcnow
from core.errors import describe_validation_error
from router.access.tokens import parse_expiry
from router.compose import Runtime
from router.http.errors import Refusal
from router.http.guard import Acting, page_policy
from router.http.ui.render import refusal, render, secured
from router.reports.adoption import Filters, GroupBy, ReportService
from router.reports.compliance import ComplianceService, Matrix
from router.reports.evidence import EvidenceService
from router.reports.export import compliance_csv
from router.reports.flags import FlagService, Thresholds
from router.reports.period import period
from router.ruleset.backtest import backtest
from rules.loader import RuleSetError, build_rule_set
from rules.model import parse_duration
from store import tallies

router = APIRouter(prefix="/ui", include_in_schema=False)

Day = Annotated[date | None, Query(description="A day (UTC); `to` is included.")]
MAX_RULE_FILES = 50
MAX_RULE_BYTES = 1024 * 1024


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@dataclass(frozen=True, slots=True)
class Chosen:
    """The period a page shows: its first and last day, and the instants they bound."""

    first: date
    last: date
    since: datetime | None
    until: datetime | None

    @property
    def filters(self) -> Filters:
        """Every placement of the period."""
        return Filters(since=self.since, until=self.until)


def _chosen(
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Chosen:
    """The `from`/`to` of a page, by default the last 90 days; a period that ends before it
    starts is refused (a 422 page)."""
    end = end or utcnow().date()
    if start is None:
        start = end - timedelta(days=89) if end > date.min + timedelta(days=89) else date.min
    try:
        since, until = period(start, end)
    except ValueError as exc:
        raise Refusal(422, str(exc)) from None
    return Chosen(start, end, since, until)


Period = Annotated[Chosen, Depends(_chosen)]


def _attachment(content: str, media: str, name: str) -> Response:
    """A file the browser downloads under `name`."""
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return secured(Response(content, media_type=media, headers=disposition))


# ---- compliance ---------------------------------------------------------------------------


MATRIX_PAGE = 25
"""Mandated lessons per page of the compliance matrix (the CSV and the bundle hold them all)."""


def _compliance(
    runtime: Runtime, since: datetime | None, until: datetime | None, offset: int
) -> dict[str, Any]:
    service = ComplianceService(runtime.db)
    now = utcnow()
    period = Filters(since=since, until=until)
    mandated = service.mandated_in(period, now)
    shown = mandated[offset : offset + MATRIX_PAGE]
    if shown:
        # Counts only, of this page's lessons: no cell lists its placements here.
        matrix = service.matrix(replace(period, lessons=shown), now, detail=False)
    else:
        matrix = Matrix([], [], {}, now, ReportService(runtime.db), detail=False)
    waivers = service.waivers()
    return {
        "matrix": matrix,
        "waivers": sorted(waivers, key=lambda w: (not w.active(now), w.expires_at)),
        "now": now,
        "mandated": mandated,
        "offset": offset,
        "matrix_page": MATRIX_PAGE,
    }


@router.get("/compliance", openapi_extra=page_policy(Permission.READ))
async def compliance(
    request: Request,
    chosen: Period,
    done: str | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """Mandated lessons × teams for a period, a page of lessons at a time; each cell opens
    its evidence chain."""
    first, last, since, until = chosen.first, chosen.last, chosen.since, chosen.until
    data = await run_in_threadpool(_compliance, _runtime(request), since, until, offset)
    return render(
        request,
        "compliance.html",
        {**data, "start": first, "end": last, "notice": "Waiver granted." if done else None},
        section="compliance",
    )


@router.get("/compliance/cell", openapi_extra=page_policy(Permission.READ))
async def cell(
    request: Request,
    lesson: Annotated[str, Query(max_length=200)],
    team: Annotated[str, Query(max_length=200)],
    chosen: Period,
) -> Response:
    """One cell's evidence chain: lesson version and content hash → rule → placement →
    signals → the audit entries that recorded them."""
    first, last, since, until = chosen.first, chosen.last, chosen.since, chosen.until

    def read() -> dict[str, Any]:
        db = _runtime(request).db
        matrix = ComplianceService(db).matrix(
            Filters(lessons=[lesson], teams=[team], since=since, until=until)
        )
        found = matrix.cells.get((lesson, team))
        chains = EvidenceService(db).chains(matrix.counted([found]))[0] if found else []
        return {"cell": found, "chains": chains}

    data = await run_in_threadpool(read)
    return render(
        request,
        "cell.html",
        {**data, "lesson": lesson, "team": team, "start": first, "end": last},
        section="compliance",
    )


@router.get("/compliance.csv", openapi_extra=page_policy(Permission.READ))
async def compliance_download(
    request: Request,
    chosen: Period,
) -> Response:
    """The matrix as CSV, the same as `cairn report compliance --format csv`."""
    first, last, since, until = chosen.first, chosen.last, chosen.since, chosen.until
    matrix = await run_in_threadpool(
        ComplianceService(_runtime(request).db).matrix, Filters(since=since, until=until)
    )
    name = f"cairn-compliance-{first}-{last}.csv"
    return _attachment(compliance_csv(matrix), "text/csv; charset=utf-8", name)


@router.get("/compliance/evidence.json", openapi_extra=page_policy(Permission.READ))
async def evidence_bundle(
    request: Request,
    chosen: Period,
) -> Response:
    """The evidence bundle of the period (`cairn evidence verify FILE` checks it offline)."""
    first, last, since, until = chosen.first, chosen.last, chosen.since, chosen.until
    bundle = await run_in_threadpool(
        EvidenceService(_runtime(request).db).bundle, Filters(since=since, until=until)
    )
    name = f"cairn-evidence-{first}-{last}.json"
    text = json.dumps(bundle, indent=1, ensure_ascii=False) + "\n"
    return _attachment(text, "application/json", name)


@router.post("/waivers", openapi_extra=page_policy(Permission.WAIVE))
async def grant_waiver(request: Request, actor: Acting) -> Response:
    """Exempt a team (or one work item) from a mandated lesson, approved by the signed-in
    person."""
    form = await request.form()

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip()[:4000] if isinstance(value, str) else ""

    def refuse(reason: str) -> Response:
        return refusal(request, 422, reason)

    try:
        lasts = parse_expiry(text("expires") or "90d")
    except ValueError as exc:
        return refuse(f"expires: {exc}")
    if lasts is None:
        return refuse("expires: a waiver always ends (at most 366d)")
    try:
        await run_in_threadpool(
            ComplianceService(_runtime(request).db).waive,
            actor,
            text("lesson"),
            text("team"),
            text("reason"),
            lasts,
            text("work_item") or None,
        )
    except ValidationError as exc:
        return refuse(describe_validation_error(exc))
    except ValueError as exc:
        return refuse(str(exc))
    return RedirectResponse("/ui/compliance?done=waiver", status_code=303)


# ---- rules --------------------------------------------------------------------------------


def _precision(tiers: dict[str, int]) -> dict[str, Any]:
    """Verified ÷ (verified + dismissed + ignored), with the three counts."""
    verified, dismissed, ignored = (
        tiers.get(t.value, 0) for t in (Tier.VERIFIED, Tier.DISMISSED, Tier.IGNORED)
    )
    return {
        "value": precision(verified, dismissed, ignored),
        "verified": verified,
        "dismissed": dismissed,
        "ignored": ignored,
    }


def _rules(runtime: Runtime) -> dict[str, Any]:
    rule_set = runtime.rules.rule_set
    settings = runtime.settings
    since = tallies.start_of(utcnow().date() - timedelta(days=90))  # whole days: tallied
    counted = ReportService(runtime.db).tier_counts(GroupBy.RULE, Filters(since=since))
    flags = FlagService(
        runtime.db, Thresholds(settings.flag_precision_below, settings.flag_min_outcomes)
    ).listed(open_only=True)
    return {
        "rule_set": rule_set,
        "packs": [] if rule_set is None else list(rule_set.packs),
        "last_error": runtime.rules.last_error,
        "precision": [
            (rule, _precision(tiers), sum(n for t, n in tiers.items() if Tier(t) in REACHED))
            for rule, tiers in sorted(counted.items(), key=lambda kv: str(kv[0]))
        ],
        "flags": [f for f in flags if f.kind == "rule"],
        "threshold": settings.flag_precision_below,
        "min_outcomes": settings.flag_min_outcomes,
    }


@router.get("/rules", openapi_extra=page_policy(Permission.READ))
async def rules(request: Request) -> Response:
    """The rule set in force, per-rule precision and flags, and the backtest form."""
    data = await run_in_threadpool(_rules, _runtime(request))
    return render(request, "rules.html", {**data, "result": None, "errors": []}, section="rules")


async def _draft_files(form: Any) -> tuple[dict[str, str], list[str]]:
    """The draft packs a backtest form carries: pasted text and uploaded files."""
    files: dict[str, str] = {}
    errors: list[str] = []
    pasted = form.get("pasted")
    if isinstance(pasted, str) and pasted.strip():
        files["pasted.yaml"] = pasted
    uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile) and u.filename]
    for upload in uploads[:MAX_RULE_FILES]:
        raw = await upload.read(MAX_RULE_BYTES + 1)
        name = (upload.filename or "upload.yaml").replace("/", "_")[:200]
        if len(raw) > MAX_RULE_BYTES:
            errors.append(f"{name}: larger than {MAX_RULE_BYTES} bytes")
            continue
        try:
            files[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(f"{name}: not UTF-8 text")
    if len(uploads) > MAX_RULE_FILES:
        errors.append(f"at most {MAX_RULE_FILES} files")
    if not files and not errors:
        errors.append("paste a rule pack or choose rule files")
    return files, errors


@router.post("/rules/backtest", openapi_extra=page_policy(Permission.OPERATE))
async def run_backtest(request: Request) -> Response:
    """Replay the stored work-item events of a window through draft rules, beside the rules in
    force; writes nothing."""
    form = await request.form()
    runtime = _runtime(request)
    files, errors = await _draft_files(form)
    since_text = form.get("since")
    since = since_text.strip() if isinstance(since_text, str) and since_text.strip() else "30d"
    window = None
    try:
        window = parse_duration(since)
    except ValueError as exc:
        errors.append(f"window: {exc}")
    draft = None
    if not errors:
        try:
            draft = build_rule_set(files.items())
        except RuleSetError as exc:
            errors.extend(str(error) for error in exc.errors)
    result = None
    if draft is not None and window is not None:
        result = await run_in_threadpool(
            backtest, runtime.db, draft, runtime.rules.rule_set, window
        )
    data = await run_in_threadpool(_rules, runtime)
    pasted = form.get("pasted")
    return render(
        request,
        "rules.html",
        {
            **data,
            "result": result,
            "errors": errors,
            "since": since,
            "pasted": pasted if isinstance(pasted, str) else "",
        },
        status=200 if not errors else 422,
        section="rules",
    )
