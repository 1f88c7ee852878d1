"""`POST /hooks/<source>`: verify on the raw body, commit to the inbox, then answer 202.

Nothing a sender can send causes a 5xx: unknown source 404, bad signature 401, oversize body 413,
undecodable or invalid payload 400. A redelivery of a known delivery id answers 200 and does
nothing. Every 2xx means the delivery is committed and will be processed.
"""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from connectors.registry import SOURCES
from core.base import utcnow
from core.errors import AuthenticationError, PayloadError
from router.compose import Runtime
from router.http.api.schemas import HOOK_BODY, HookAnswer, Rejected
from router.http.guard import Access, policy
from router.metrics import DELIVERIES
from router.observability.correlation import bound, for_delivery
from router.observability.stages import stamp
from router.stages.inbound import TOPIC
from store import inbox, outbox

log = logging.getLogger("cairn.ingress")

router = APIRouter()

# Header names that can carry credentials are never stored.
_PRIVATE_HEADER_PARTS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "api-key",
    "apikey",
)
MAX_DELIVERY_KEY = 255


class BodyTooLarge(Exception):
    """The request body exceeded the configured limit."""


def _problem(source: str, status: int, reason: str) -> JSONResponse:
    DELIVERIES.labels(source if source in SOURCES else "unknown", str(status)).inc()
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


def _unreadable(source: str, exc: Exception) -> JSONResponse:
    """A body a connector failed to read in a way it should have reported: the sender's 400."""
    log.warning("unreadable %s delivery: %s", source, type(exc).__name__)
    return _problem(source, 400, "invalid payload: the body could not be read")


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers kept with the delivery for audit, minus anything that may be a credential."""
    return {
        k.lower(): v
        for k, v in headers.items()
        if not any(part in k.lower() for part in _PRIVATE_HEADER_PARTS)
    }


async def read_body(request: Request, limit: int) -> bytes:
    """Read the raw body, stopping as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _accept(
    runtime: Runtime, source: str, key: str, headers: dict[str, str], body: bytes
) -> int | None:
    now = utcnow()
    with bound(for_delivery(source, key)), runtime.db.transaction() as session:
        inbox_id = inbox.accept(
            session, source=source, delivery_key=key, headers=headers, body=body, now=now
        )
        if inbox_id is not None:
            payload = stamp({"inbox_id": inbox_id})
            outbox.enqueue(session, topic=TOPIC, payload=payload, key=f"{source}:{key}", now=now)
            log.info("accepted %s delivery as inbox row %s", source, inbox_id)
    return inbox_id


HOOK_REFUSALS: dict[int | str, dict[str, Any]] = {
    **{
        status: {"model": Rejected, "description": description}
        for status, description in {
            400: "The payload cannot be processed (the reason says which field).",
            401: "The signature, token or credentials did not verify.",
            404: "No such source is enabled on this server.",
            413: "The body is over the configured limit.",
        }.items()
    },
    503: {"model": Rejected, "description": "Storage unavailable; retry later."},
}
"""What every webhook route may answer besides its success."""


@router.post(
    "/hooks/{source}",
    status_code=202,
    tags=["ingress"],
    response_model=HookAnswer,
    responses={
        200: {"model": HookAnswer, "description": "A redelivery of a known id: nothing done."},
        **HOOK_REFUSALS,
    },
    openapi_extra={**policy(Access.SIGNED), **HOOK_BODY},
)
async def receive_hook(source: str, request: Request) -> JSONResponse:
    """Accept one webhook delivery from `source`."""
    runtime: Runtime = request.app.state.runtime
    spec = SOURCES.get(source)
    verifier = runtime.verifiers.get(source)
    if spec is None or verifier is None:
        return _problem(
            source, 404, f"no webhook source named {source!r} is enabled on this server"
        )
    try:
        body = await read_body(request, runtime.settings.max_body_bytes)
    except BodyTooLarge:
        return _problem(source, 413, f"body exceeds {runtime.settings.max_body_bytes} bytes")
    try:
        delivery = verifier.verify(request.headers, body)
    except AuthenticationError as exc:
        log.info("rejected %s delivery: %s", source, exc)
        return _problem(source, 401, f"signature verification failed: {exc}")
    except (RecursionError, ValueError) as exc:  # a connector's slip; the body is to blame
        return _unreadable(source, exc)
    key = delivery.delivery_key
    if not 0 < len(key) <= MAX_DELIVERY_KEY or not key.isprintable():
        return _problem(
            source, 400, f"delivery id must be 1 to {MAX_DELIVERY_KEY} printable characters"
        )
    try:
        spec.parse(request.headers, body)
    except PayloadError as exc:
        return _problem(source, 400, f"invalid payload: {exc}")
    except (RecursionError, ValueError) as exc:  # a connector's slip; the body is to blame
        return _unreadable(source, exc)
    try:
        inbox_id = await run_in_threadpool(
            _accept, runtime, source, key, storable_headers(request.headers), body
        )
    except Exception:
        # Our side failed, not the sender's: say so, and ask for the retry senders make anyway.
        log.exception("could not store a %s delivery", source)
        DELIVERIES.labels(source, "503").inc()
        return JSONResponse(
            {"status": "unavailable", "reason": "storage unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    if inbox_id is None:
        DELIVERIES.labels(source, "duplicate").inc()
        return JSONResponse({"status": "duplicate", "delivery": key}, 200)
    DELIVERIES.labels(source, "accepted").inc()
    runtime.transport.notify()
    return JSONResponse({"status": "accepted", "delivery": key, "inbox_id": inbox_id}, 202)
