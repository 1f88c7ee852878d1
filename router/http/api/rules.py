"""`GET /api/v1/rules`: the rule set in force."""

from typing import Any

from fastapi import APIRouter, Request

from core.access import Permission
from router.compose import Runtime
from router.http.guard import policy

router = APIRouter(prefix="/api/v1", tags=["api"])


@router.get("/rules", openapi_extra=policy(Permission.READ))
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
