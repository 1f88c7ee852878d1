"""`/api/v1/rules`: the rule set in force, and checking draft rule packs before they go in."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from router.compose import Runtime
from router.http.guard import policy
from rules.loader import RuleSetError, build_rule_set

router = APIRouter(prefix="/api/v1", tags=["api"])
MAX_FILES = 200


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


def _validate(files: dict[str, str]) -> dict[str, Any]:
    try:
        rule_set = build_rule_set(files.items())
    except RuleSetError as exc:
        return {"ok": False, "errors": [str(error) for error in exc.errors]}
    return {
        "ok": True,
        "version": rule_set.version,
        "packs": [pack.pack for pack in rule_set.packs],
        "rules": sum(len(pack.rules) for pack in rule_set.packs),
        "errors": [],
    }


@router.post("/rules/validate", openapi_extra=policy(Permission.OPERATE))
async def validate(
    files: Annotated[
        dict[str, str],
        Body(
            embed=True,
            description="File name → YAML text of each draft pack (the whole set, as in git).",
        ),
    ],
) -> dict[str, Any]:
    """Check draft packs as `cairn rules validate` does: `ok`, and every problem as
    `file:line:column: message`, or the version the set would have and its packs."""
    if not files or len(files) > MAX_FILES:
        return {"ok": False, "errors": [f"give 1 to {MAX_FILES} files"]}
    return await run_in_threadpool(_validate, files)
