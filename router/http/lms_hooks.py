"""`POST /hooks/xapi`: completion statements pushed by a learning record store (or a forwarder),
recorded on the learners' training placements at once, in the transaction that answers 200.

Authenticated with `Authorization: Bearer CAIRN_XAPI_PUSH_SECRET`; a statement pushed twice is
recorded once (its id is the delivery id), and statements about people or activities Cairn does
not know are counted in the answer, not refused (the LRS would retry them for ever).
"""

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.xapi.statements import BearerSecret, Statement, verify_push
from core.base import utcnow
from core.errors import AuthenticationError, PayloadError
from router.compose import Runtime
from router.http.guard import Access, policy
from router.http.ingress import BodyTooLarge, read_body
from router.lms.statements import Outcome, ingest, reported

router = APIRouter(tags=["ingress"])


def _record(runtime: Runtime, statements: list[Statement]) -> Outcome:
    now = utcnow()
    found = [r for r in (reported(s, now) for s in statements) if r is not None]
    with runtime.db.transaction() as session:
        return ingest(session, found, now)


@router.post("/hooks/xapi", openapi_extra=policy(Access.SIGNED))
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
