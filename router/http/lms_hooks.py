"""`POST /hooks/xapi`: completion statements pushed by a learning record store (or a forwarder),
recorded on the learners' training placements at once, in the transaction that answers 200.

Authenticated with `Authorization: Bearer CAIRN_XAPI_PUSH_SECRET`; a statement pushed twice is
recorded once (its id is the delivery id), and statements about people or activities Cairn does
not know are counted in the answer, not refused (the LRS would retry them for ever).

`POST /hooks/canvas`: Canvas Live Events (`course_completed`, `submission_created`), each a JWT
signed by Canvas (the body, `application/jwt`; or `{"jwt": "…"}` as JSON), checked against the
keys in `CAIRN_CANVAS_LIVE_EVENTS_JWKS` and recorded the same way (router/lms/canvas_events.py).
"""

import json
import logging
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.canvas.jwt import LiveEvent
from connectors.xapi.statements import BearerSecret, Statement, verify_push
from core.base import utcnow
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    UnsupportedEventError,
)
from router.compose import Runtime
from router.http.api.schemas import (
    CANVAS_BODY,
    XAPI_BODY,
    LiveEventRecorded,
    StatementsRecorded,
)
from router.http.guard import Access, policy
from router.http.ingress import HOOK_REFUSALS, BodyTooLarge, read_body
from router.lms import canvas_events
from router.lms.canvas_events import EventOutcome
from router.lms.statements import Outcome, ingest, reported

log = logging.getLogger("cairn.training")
router = APIRouter(tags=["ingress"])


def _record(runtime: Runtime, statements: list[Statement]) -> Outcome:
    now = utcnow()
    found = [r for r in (reported(s, now) for s in statements) if r is not None]
    with runtime.db.transaction() as session:
        return ingest(session, found, now)


@router.post(
    "/hooks/xapi",
    response_model=StatementsRecorded,
    responses=HOOK_REFUSALS,
    openapi_extra={**policy(Access.SIGNED), **XAPI_BODY},
)
async def xapi(request: Request) -> JSONResponse:
    """Record pushed xAPI statements (one statement or a list)."""
    runtime: Runtime = request.app.state.runtime
    secret = runtime.settings.xapi_push_secret
    if secret is None or not secret.get_secret_value():
        return JSONResponse(
            {"status": "rejected", "reason": "xAPI push is not enabled on this server"}, 404
        )
    try:
        body = await read_body(request, runtime.settings.max_body_bytes)
    except BodyTooLarge:
        reason = f"body exceeds {runtime.settings.max_body_bytes} bytes"
        return JSONResponse({"status": "rejected", "reason": reason}, 413)
    try:
        statements = verify_push(request.headers, body, BearerSecret(secret))
    except AuthenticationError as exc:
        return JSONResponse(
            {"status": "rejected", "reason": f"signature verification failed: {exc}"},
            401,
            headers={"WWW-Authenticate": 'Bearer realm="cairn-xapi"'},
        )
    except (PayloadError, RecursionError, ValueError) as exc:
        return JSONResponse({"status": "rejected", "reason": f"invalid statements: {exc}"}, 400)
    outcome = await run_in_threadpool(_record, runtime, statements)
    return JSONResponse({"status": "recorded", "statements": len(statements), **asdict(outcome)})


def _rejected(reason: str, status: int, **headers: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "reason": reason}, status, headers=headers or None)


def _token(body: bytes) -> str | None:
    """The JWT a Live Event body carries (the body itself, or `{"jwt": "…"}`); None when there is
    none; PayloadError for a body that is not text or not JSON where it looks like JSON."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise PayloadError("the body is not text") from exc
    if text.startswith(("{", "[")):
        try:
            document = json.loads(text)
        except (RecursionError, ValueError) as exc:
            raise PayloadError("the body is neither a JWT nor JSON") from exc
        found = document.get("jwt") if isinstance(document, dict) else None
        return found if isinstance(found, str) and found.strip() else None
    return text or None


def _record_event(runtime: Runtime, event: LiveEvent) -> EventOutcome:
    with runtime.db.transaction() as session:
        return canvas_events.record(session, event, utcnow())


@router.post(
    "/hooks/canvas",
    response_model=LiveEventRecorded,
    responses=HOOK_REFUSALS,
    openapi_extra={**policy(Access.SIGNED), **CANVAS_BODY},
)
async def canvas(request: Request) -> JSONResponse:
    """Record a Canvas Live Event (`course_completed`, `submission_created`), a signed JWT."""
    runtime: Runtime = request.app.state.runtime
    try:
        verifier = canvas_events.verifier(runtime.settings)
    except ConfigurationError as exc:
        log.error("Canvas Live Events: %s", exc)
        return _rejected(f"Canvas Live Events are not usable on this server: {exc}", 404)
    if verifier is None:
        return _rejected("Canvas Live Events are not enabled on this server", 404)
    try:
        body = await read_body(request, runtime.settings.max_body_bytes)
    except BodyTooLarge:
        return _rejected(f"body exceeds {runtime.settings.max_body_bytes} bytes", 413)
    try:
        token = _token(body)
        if token is None:
            raise AuthenticationError("no signed JWT in the body")
        event = verifier.read(token)
    except AuthenticationError as exc:
        return _rejected(
            f"signature verification failed: {exc}",
            401,
            **{"WWW-Authenticate": 'Bearer realm="cairn-canvas"'},
        )
    except UnsupportedEventError as exc:
        return JSONResponse({"status": "ignored", "reason": str(exc)})
    except (PayloadError, RecursionError, ValueError) as exc:
        return _rejected(f"invalid event: {exc}", 400)
    outcome = await run_in_threadpool(_record_event, runtime, event)
    return JSONResponse({"status": "recorded", "event": event.name, **asdict(outcome)})
