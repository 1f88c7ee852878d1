"""`/api/v1/…`: read-only views of what Cairn holds."""

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from router.compose import Runtime
from store import placements

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.get("/rules")
async def active_rules(request: Request) -> dict[str, Any]:
    """The rule set in force: version, packs, source files, and the last reload error."""
    runtime: Runtime = request.app.state.runtime
    rule_set = runtime.rules.rule_set
    return {
        "version": None if rule_set is None else rule_set.version,
        "packs": [] if rule_set is None else [p.pack for p in rule_set.packs],
        "sources": [] if rule_set is None else list(rule_set.sources),
        "last_error": runtime.rules.last_error,
    }


@router.get("/work-items/{ref:path}/placements")
async def work_item_placements(ref: str, request: Request) -> list[dict[str, Any]]:
    """Placements in one work item (e.g. `github:acme/api#12`), with the rule that made each."""
    runtime: Runtime = request.app.state.runtime

    def read() -> list[dict[str, Any]]:
        with runtime.db.transaction() as session:
            return [p.model_dump(mode="json") for p in placements.for_work_item(session, ref)]

    found = await run_in_threadpool(read)
    if not found and ":" not in ref:
        raise HTTPException(400, "a work item ref looks like github:owner/repo#12 or jira:KEY-1")
    return found
