"""`/api/v1/queue`: the pipeline's durable queue for platform teams: counts, dead letters, retry."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.base import utcnow
from router.compose import Runtime
from router.http.api.schemas import QueueStatus, Requeued
from router.http.guard import Acting, policy
from store import audit, outbox

router = APIRouter(prefix="/api/v1/queue", tags=["operations"])


@router.get("", response_model=QueueStatus, openapi_extra=policy(Permission.OPERATE))
async def status(request: Request) -> dict[str, Any]:
    """Messages per status, and the dead-lettered ones with their last error (newest 100)."""
    runtime: Runtime = request.app.state.runtime

    def read() -> dict[str, Any]:
        with runtime.db.transaction() as session:
            dead = [
                {"id": m.id, "topic": m.topic, "key": m.key, "attempts": m.attempts, "error": e}
                for m, e in outbox.dead_letters(session)
            ]
            return {"counts": outbox.counts(session), "dead": dead}

    return await run_in_threadpool(read)


@router.post("/retry-dead", response_model=Requeued, openapi_extra=policy(Permission.OPERATE))
async def retry_dead(request: Request, actor: Acting) -> dict[str, int]:
    """Give every dead-lettered message a fresh set of attempts."""
    runtime: Runtime = request.app.state.runtime

    def requeue() -> int:
        with runtime.db.transaction() as session:
            now = utcnow()
            count = outbox.requeue_dead(session, now)
            audit.record_by(
                session, actor, "queue.dead_requeued", "outbox", {"messages": count}, now
            )
            return count

    count = await run_in_threadpool(requeue)
    runtime.transport.notify()
    return {"requeued": count}
