"""The GitHub part of `cairn demo`: a pull request in the fake receives its lesson, then a tick.

The caller runs Cairn (with `github_webhook_secret` set and `github_demo_target(fake)` as the
GitHub target) and the fake; this opens a pull request, delivers GitHub's signed webhooks to
Cairn and checks what comes back, through the same code paths production uses.
"""

import asyncio
import time
from collections.abc import Callable

import httpx

from connectors.github import section
from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.retrying import RetryPolicy
from core.placement import PlacementState, SignalKind
from store import placements
from store.engine import Database

DEMO_REPO = "acme/payments-api"
DEMO_FILES = ["src/payments/db/pool.py", "deploy/gunicorn.conf.py"]
DEMO_BODY = "Raise gunicorn workers from 4 to 8 per pod."

Say = Callable[[str, str], None]


def github_demo_target(fake: FakeGitHub) -> GitHubTarget:
    """A GitHubTarget speaking to the running fake with its token, without write pacing."""
    return GitHubTarget.with_token(
        next(iter(fake.tokens)),
        base_url=fake.url,
        own_actor=fake.actor,
        policy=RetryPolicy(attempts=3, base_wait=0.1, max_wait=5),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


async def _deliver(client: httpx.AsyncClient, delivery: Delivery, secret: str) -> int:
    headers, body = FakeGitHub.signed(delivery, secret)
    response = await client.post("/hooks/github", content=body, headers=headers)
    return response.status_code


async def _until(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.05)
    return False


def _ticked(db: Database, ref: str) -> bool:
    with db.transaction() as session:
        for placement in placements.for_work_item(session, ref):
            kinds = {s.kind for s in placements.signals(session, placement.id)}
            if placement.state == PlacementState.COMPLETED and SignalKind.TICKED in kinds:
                return True
    return False


async def run_github_demo(
    say: Say,
    cairn_url: str,
    db: Database,
    fake: FakeGitHub,
    webhook_secret: str,
    *,
    wait_seconds: float = 20.0,
) -> bool:
    """Open a PR, let Cairn place its lesson, tick it, and see the TICKED signal; True if so."""
    opened = fake.open_pull(DEMO_REPO, title="More workers", body=DEMO_BODY, files=DEMO_FILES)
    key = (DEMO_REPO, opened.payload["number"])
    ref = f"github:{DEMO_REPO}#{key[1]}"
    async with httpx.AsyncClient(base_url=cairn_url, timeout=10) as client:
        status = await _deliver(client, opened, webhook_secret)
        say("github", f"POST /hooks/github pull_request.opened {ref}: {status}")

        def embedded() -> bool:
            return bool(section.items(fake.pulls[key].body))

        if not await _until(embedded, wait_seconds):
            say("github", f"no Lessons section appeared in {ref}")
            return False
        body = fake.pulls[key].body or ""
        say("github", f"{ref} body after {fake.writes[key]} write(s):\n{body}")
        writes = fake.writes[key]
        item = section.items(body)[0]
        status = await _deliver(client, fake.tick(key, item.placement_id), webhook_secret)
        say("github", f"engineer ticks {item.placement_id}; pull_request.edited: {status}")
        ticked = await _until(lambda: _ticked(db, ref), wait_seconds)
    say("github", "TICKED signal recorded" if ticked else "no TICKED signal")
    return ticked and writes == 1 and fake.writes[key] == 1
