"""`cairn backfill jira`: route the issues a JQL query finds through the normal pipeline.

Lesson-driven backfill: after publishing a lesson, find the open issues it belongs in
(`--jql`), record each one as a work item and queue it for the same stages a webhook would
(`hydrate` → `route` → `embed`, keyed by the issue so it is serialised with webhook work). The
running workers (`cairn serve` or `cairn worker`) place the lessons; routing skips lessons
already placed, so re-running is harmless. `--lesson` must name a published lesson; the route
stage places every applicable lesson not yet placed, the named one among them.

Resumable: each page is recorded (work items, queued messages and an audit entry) in one
transaction, then the page token is saved to a small JSON state file; a re-run with the same
query continues after the last saved page. Rate-limit aware: searches go through the Jira
target's retries, and a longer Retry-After pauses the backfill instead of failing it.
"""

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from connectors.jira.models import IssueFields
from connectors.jira.target import JiraTarget
from connectors.jira.webhook import LESSON_LABEL, work_item
from core.base import utcnow
from core.errors import CairnError, TransientError
from core.lesson import LessonStatus
from core.work import WorkItem
from router.cli.support import database, load_settings, require_schema
from router.compose import build_jira_target
from router.stages.hydrate import TOPIC as HYDRATE_TOPIC
from store import audit, lessons, outbox, work_items
from store.engine import Database

ACTOR = "cairn:backfill"
SEARCH_FIELDS = "summary,issuetype,project,labels,components,assignee,parent,status"
MAX_PAUSE = 300.0


@click.group("backfill")
def backfill_group() -> None:
    """Place lessons into existing work (lesson-driven backfill)."""


def _state_path(given: str | None, jql: str, lesson: str | None) -> Path:
    if given:
        return Path(given)
    digest = hashlib.sha256(f"{jql}\x00{lesson or ''}".encode()).hexdigest()[:12]
    return Path(f".cairn-backfill-jira-{digest}.json")


def _load_state(path: Path, jql: str, lesson: str | None) -> dict[str, Any]:
    fresh: dict[str, Any] = {"jql": jql, "lesson": lesson, "token": None, "seen": 0, "done": False}
    if not path.exists():
        return fresh
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("jql") != jql or state.get("lesson") != lesson:
        raise click.ClickException(f"{path} belongs to another backfill; pass --state elsewhere")
    return {**fresh, **state}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(state))
    partial.replace(path)  # atomic: a crash leaves the previous checkpoint


def _items(issues: list[dict[str, Any]]) -> list[WorkItem]:
    found = []
    for issue in issues:
        try:
            fields = IssueFields.model_validate(issue.get("fields") or {})
            if LESSON_LABEL in fields.labels:
                continue  # Cairn's own sub-tasks are not work to place lessons in
            found.append(work_item(str(issue.get("key")), fields, issue.get("self")))
        except (ValidationError, CairnError):
            continue  # an issue Cairn cannot describe is skipped, never the whole page
    return found


def _record_page(db: Database, items: list[WorkItem], state: dict[str, Any]) -> None:
    now = utcnow()
    with db.transaction() as session:
        for item in items:
            work_items.record(session, item, now)
            outbox.enqueue(
                session, topic=HYDRATE_TOPIC, payload={"ref": item.ref}, key=item.ref, now=now
            )
        audit.record(
            session,
            actor=ACTOR,
            action="backfill.page",
            subject="jira",
            details={
                "jql": state["jql"],
                "lesson": state["lesson"],
                "queued": [i.ref for i in items],
                "seen": state["seen"],
            },
            now=now,
        )


def _page(target: JiraTarget, jql: str, token: str | None, size: int) -> dict[str, Any]:
    while True:
        try:
            return target.search_page(jql, token, fields=SEARCH_FIELDS, size=size)
        except TransientError as exc:
            pause = min(MAX_PAUSE, exc.retry_after or 10.0)
            click.echo(f"\nJira asks Cairn to slow down; pausing {pause:.0f} s", err=True)
            time.sleep(pause)


def _total(target: JiraTarget, jql: str) -> int | None:
    try:
        count = target.calls.run("count issues", lambda c: c.approximate_issue_count(jql))
    except CairnError:
        return None  # only a nicer progress bar is lost
    return count if isinstance(count, int) else None


@backfill_group.command("jira")
@click.option(
    "--jql", required=True, help='Issues to route, e.g. "project = PAY AND statusCategory != Done".'
)
@click.option("--lesson", default=None, help="A published lesson this backfill is for.")
@click.option(
    "--state", "state_file", default=None, help="Checkpoint file (default: derived from the query)."
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 100),
    default=50,
    show_default=True,
    help="Issues per Jira search page; each page is recorded and checkpointed at once.",
)
@click.option(
    "--restart", is_flag=True, help="Ignore the checkpoint and start from the first page."
)
def backfill_jira(
    jql: str, lesson: str | None, state_file: str | None, page_size: int, restart: bool
) -> None:
    """Record every issue JQL finds as a work item and queue it for routing."""
    settings = load_settings()
    require_schema(settings)
    try:
        target = build_jira_target(settings)
    except CairnError as exc:
        raise click.ClickException(str(exc)) from exc
    if target is None:
        raise click.ClickException("Jira is not configured: set CAIRN_JIRA_URL, _EMAIL, _API_TOKEN")
    path = _state_path(state_file, jql, lesson)
    if restart:
        path.unlink(missing_ok=True)
    state = _load_state(path, jql, lesson)
    if state["done"]:
        click.echo(f"already finished ({state['seen']} issues); --restart to run it again")
        return
    with database(settings) as db:
        if lesson is not None:
            with db.transaction() as session:
                found = lessons.get(session, lesson)
            if found is None or found.status != LessonStatus.PUBLISHED:
                raise click.ClickException(f"lesson {lesson!r} is not published")
        total = _total(target, jql)
        with click.progressbar(length=total or 0, label="issues", show_pos=True) as bar:
            bar.update(state["seen"])
            while True:
                page = _page(target, jql, state["token"], page_size)
                issues = list(page.get("issues") or [])
                state["seen"] += len(issues)
                _record_page(db, _items(issues), state)
                state["token"] = page.get("nextPageToken")
                state["done"] = not state["token"] or bool(page.get("isLast", False))
                _save_state(path, state)
                bar.update(len(issues))
                if state["done"]:
                    break
    click.echo(f"queued {state['seen']} issues for routing (checkpoint {path})")
