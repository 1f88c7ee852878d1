"""The Jira part of `cairn demo`: an issue in the fake gets its checklist, an engineer ticks one.

`run_jira_demo` expects a running Cairn at `cairn_url` whose Jira webhook secret is
`webhook_secret` and whose Jira target points at `fake` (`fake.target()`), with rules that place
at least one lesson as `jira.checklist` on a Story in project PAY with component `ledger-api`.
"""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from connectors.jira import adf
from connectors.jira.engineer import Engineer
from connectors.jira.fake import JiraFake
from connectors.jira.webhook import sign
from core.placement import EmbeddingForm, Placement, PlacementState, SignalKind
from store import placements
from store.engine import Database

Say = Callable[[str, str], None]
"""(step, text) → prints one line of the demo."""


async def _send(client: httpx.AsyncClient, secret: str, payload: dict[str, Any], ident: str) -> int:
    body = json.dumps(payload).encode()
    response = await client.post("/hooks/jira", content=body, headers=sign(secret, body, ident))
    return response.status_code


async def _until(check: Callable[[], Any], seconds: float) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        found = check()
        if found or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


def _placed(db: Database, ref: str) -> list[Placement]:
    with db.transaction() as session:
        return [
            p
            for p in placements.for_work_item(session, ref)
            if p.form == EmbeddingForm.JIRA_CHECKLIST and p.state != PlacementState.PLANNED
        ]


def _ticked(db: Database, placement_id: str) -> bool:
    with db.transaction() as session:
        signals = placements.signals(session, placement_id)
    return any(s.kind == SignalKind.TICKED for s in signals)


async def run_jira_demo(
    say: Say, cairn_url: str, db: Database, fake: JiraFake, webhook_secret: str
) -> bool:
    """Issue created → signed webhook → checklist placed → tick → signed webhook → TICKED."""
    engineer = Engineer(fake)
    key, created = engineer.create_issue(
        "PAY",
        "Scale ledger-api workers for Black Friday",
        "Double the workers per pod; keep p99 under 200 ms.",
        labels=("team:payments",),
        components=("ledger-api",),
    )
    ref = f"jira:{key}"
    async with httpx.AsyncClient(base_url=cairn_url, timeout=10.0) as client:
        status = await _send(client, webhook_secret, created, f"demo-{key}-created")
        say("jira", f"{key} created in the Jira fake; signed jira:issue_created → {status}")
        placed = await _until(lambda: _placed(db, ref), 30.0)
        if not placed or status != 202:
            say("jira", f"no checklist lesson was placed in {key}: check the Jira rules")
            return False
        doc = fake.description(key)
        say("jira", f"{key} description now ({fake.writes[key]} write(s) to the issue):")
        for node in doc.get("content") or []:
            if node.get("type") == "taskList":
                for item in node.get("content") or []:
                    box = "[x]" if item["attrs"].get("state") == "DONE" else "[ ]"
                    say("jira", f"  {box} {adf.plain_text(item)}")
            else:
                say("jira", f"  {adf.plain_text(node)}")
        chosen = placed[0]
        tick = engineer.tick(key, chosen.id)
        status = await _send(client, webhook_secret, tick, f"demo-{key}-tick")
        say("jira", f"an engineer ticks {chosen.lesson_id}; signed jira:issue_updated → {status}")
        ticked = await _until(lambda: _ticked(db, chosen.id), 30.0)
    say("jira", f"signal for {chosen.lesson_id}: {'ticked' if ticked else 'missing'}")
    return bool(ticked) and status == 202
