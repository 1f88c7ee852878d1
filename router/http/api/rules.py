"""`/api/v1/rules`: the rule set in force, and checking draft rule packs before they go in."""

from typing import Any

import yaml
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from router.compose import Runtime
from router.http.api.schemas import ActiveRules, RuleFiles, RulesCheck
from router.http.guard import policy
from rules.loader import RuleSetError, build_rule_set

router = APIRouter(prefix="/api/v1", tags=["api"])
MAX_FILES = 200


@router.get("/rules", response_model=ActiveRules, openapi_extra=policy(Permission.READ))
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
    except yaml.YAMLError as exc:
        # Text YAML cannot even read (control characters, say) names no file line by line.
        problem = getattr(exc, "problem", None) or "not readable as YAML"
        return {"ok": False, "errors": [f"a file is not readable as YAML: {problem}"]}
    return {
        "ok": True,
        "version": rule_set.version,
        "packs": [pack.pack for pack in rule_set.packs],
        "rules": sum(len(pack.rules) for pack in rule_set.packs),
        "errors": [],
    }


@router.post("/rules/validate", response_model=RulesCheck, openapi_extra=policy(Permission.OPERATE))
async def validate(body: RuleFiles) -> dict[str, Any]:
    """Check draft packs as `cairn rules validate` does: `ok`, and every problem as
    `file:line:column: message`, or the version the set would have and its packs."""
    if not body.files or len(body.files) > MAX_FILES:
        return {"ok": False, "errors": [f"give 1 to {MAX_FILES} files"]}
    return await run_in_threadpool(_validate, body.files)
