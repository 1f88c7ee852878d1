"""The review part of `cairn demo`, through the authenticated API with tokens of its own.

Lesson owners capture and submit, a reviewer approves and publishes; each call carries a bearer
token, and the audit log records the token's principal. Two refused calls show the guard.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from core.access import Role
from core.lesson import Lesson
from router.access.operator import cli_principal
from router.access.tokens import TokenService
from store.engine import Database

Say = Callable[[str, str], None]


class DemoApi:
    """Cairn's API as the demo's people call it: one token per owner team, one reviewer token."""

    def __init__(self, client: httpx.AsyncClient, db: Database) -> None:
        self.client = client
        self._service = TokenService(db)
        self._tokens: dict[str, str] = {}

    def _token(self, who: str) -> str:
        """The token `who` acts with, created (as the local operator) on first use."""
        if who not in self._tokens:
            role, _, team = who.partition(":")
            name = f"demo-{team}-lead" if team else f"demo-{role}"
            created = self._service.create(
                name, Role(role), (team,) if team else (), None, cli_principal("cairn demo")
            )
            self._tokens[who] = created.secret
        return self._tokens[who]

    async def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """One API call as `who`: `owner:<team>` (that team's lead), `reviewer` or `platform`."""
        headers = {"Authorization": f"Bearer {self._token(who)}"}
        return await self.client.request(method, path, json=body, headers=headers)

    async def review(
        self, lesson_id: str, owner_team: str, approval: dict[str, Any]
    ) -> httpx.Response:
        """Submit as the owner team's lead, then approve and publish as the reviewer."""
        base = f"/api/v1/lessons/{lesson_id}"
        for who, step, body in (
            (f"owner:{owner_team}", "submit", None),
            ("reviewer", "approve", approval),
            ("reviewer", "publish", None),
        ):
            response = await self.call(who, "POST", f"{base}/{step}", body)
            if response.status_code != 200:
                return response
        return response


async def publish_examples(api: DemoApi, examples: list[Lesson], say: Say) -> int:
    """Each example lesson is captured by its team's lead and reviewed; returns failures."""
    failures = 0
    for lesson in examples:
        body = lesson.model_dump(mode="json", exclude={"status", "version", "review"})
        created = await api.call(f"owner:{lesson.owner}", "POST", "/api/v1/lessons", body)
        notes = {"notes": lesson.applicability.adaptation_notes}
        published = (
            await api.review(lesson.id, lesson.owner, notes) if created.is_success else created
        )
        if published.status_code != 200:
            say("lesson", f"{lesson.id}: {published.status_code} {published.text}")
            failures += 1
            continue
        done = published.json()
        say(
            "lesson",
            f"{done['id']}@{done['version']} captured by {done['provenance']['captured_by']}, "
            f"approved by {done['review']['reviewer']}, published "
            f"({done['mandate']}, owner {done['owner']}): {done['title']}",
        )
    return failures


async def show_refusals(api: DemoApi, lesson_id: str, owner_team: str, say: Say) -> int:
    """No token: 401; an owner approving: 403. Returns failures."""
    anonymous = await api.client.post(f"/api/v1/lessons/{lesson_id}/submit")
    say("access", f"submit without a token: {anonymous.status_code}")
    owner_approves = await api.call(
        f"owner:{owner_team}", "POST", f"/api/v1/lessons/{lesson_id}/approve", {}
    )
    say(
        "access",
        f"the owner team's lead approving: {owner_approves.status_code} "
        f"({owner_approves.json()['reason']})",
    )
    return (anonymous.status_code != 401) + (owner_approves.status_code != 403)


async def until(check: Callable[[], Any], seconds: float) -> Any:
    """Poll `check` (in a thread: it reads the database or a fake) until it returns something
    truthy or `seconds` pass; its last answer."""
    deadline = time.monotonic() + seconds
    while True:
        found = await asyncio.to_thread(check)
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)
