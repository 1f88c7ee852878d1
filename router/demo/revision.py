"""The revision part of `cairn demo`: a placed lesson gets version 2, and the work shows it.

After the GitHub and Jira steps, the owner team's lead revises the required lesson placed on the
demo's pull request (revise, edit, submit), the reviewer approves and publishes version 2, and the
pipeline brings its open and ticked items to the new text: the pull request's item and the Jira
checklist item are read back from the fakes, each marked "updated to v2", the tick kept.
"""

from collections.abc import Callable
from functools import partial

from connectors.github import section
from connectors.github.fake import FakeGitHub
from connectors.jira import adf
from connectors.jira.fake import JiraFake
from core.lesson import Mandate
from core.placement import EmbeddingForm, Placement
from router.demo.github import DEMO_REPO
from router.demo.review import DemoApi, until
from store import lessons, placements
from store.engine import Database

Say = Callable[[str, str], None]

STATEMENT = (
    "Derive the connection-pool size from the worker count on every deploy, and keep the pools "
    "of all services on one database under its max_connections."
)
NOTES = "payments-api and ledger-api share one database: the sum of their pools is what counts."


def _placed(db: Database, ref: str) -> Placement | None:
    """The required lesson placed on the work item (the demo's captured lesson), if any."""
    with db.transaction() as session:
        found = placements.for_work_item(session, ref)
    return next((p for p in found if p.mandate == Mandate.REQUIRED), None)


def _pr_line(fake: FakeGitHub, key: tuple[str, int], placement_id: str) -> str | None:
    """The pull request body's line showing the placement, once it is marked as updated."""
    marker = f"<!-- {section.marker_id(placement_id)} -->"
    body = fake.pulls[key].body or ""
    line = next((line for line in body.splitlines() if marker in line), None)
    return line if line is not None and "_(updated to v2)_" in line else None


def _jira_line(fake: JiraFake, key: str, placement_id: str) -> str | None:
    """The issue's checklist item showing the placement, once it is marked as updated."""
    wanted = adf.local_id(placement_id)
    lists = [n for n in fake.description(key).get("content") or [] if n["type"] == "taskList"]
    for item in (item for node in lists for item in node.get("content") or []):
        if item["attrs"].get("localId") == wanted:
            text = adf.plain_text(item)
            box = "[x]" if item["attrs"].get("state") == "DONE" else "[ ]"
            return f"{box} {text}" if "updated to v2" in text else None
    return None


async def run_revision_demo(
    say: Say,
    api: DemoApi,
    db: Database,
    github: FakeGitHub,
    jira: JiraFake,
    *,
    wait_seconds: float = 20.0,
) -> bool:
    """Revise the lesson placed on the demo's pull request to version 2 and see its items show
    the new text marked "updated to v2"; True if both did, with no other write."""
    key = next(k for k in github.pulls if k[0] == DEMO_REPO)
    ref = f"github:{DEMO_REPO}#{key[1]}"
    placement = _placed(db, ref)
    if placement is None:
        say("revise", f"no required lesson is placed on {ref}")
        return False
    lesson_id = placement.lesson_id
    with db.transaction() as session:
        lesson = lessons.get(session, lesson_id)
        checklists = [
            p
            for p in placements.for_lesson(session, lesson_id)
            if p.form == EmbeddingForm.JIRA_CHECKLIST
        ]
    assert lesson is not None  # placed from it
    owner, base = f"owner:{lesson.owner}", f"/api/v1/lessons/{lesson_id}"
    opened = await api.call(owner, "POST", f"{base}/revise")
    edited = await api.call(owner, "PATCH", base, {"statement": STATEMENT})
    published = await api.review(lesson_id, lesson.owner, {"notes": NOTES})
    if not (opened.status_code == edited.status_code == published.status_code == 200):
        say("revise", f"refused: {published.status_code} {published.text}")
        return False
    done = published.json()
    say(
        "revise",
        f"{done['id']}@{done['version']} revised and submitted by token:demo-{lesson.owner}-lead, "
        f"approved and published by {done['review']['reviewer']}: {done['statement']}",
    )
    writes = github.writes[key]
    line = await until(partial(_pr_line, github, key, placement.id), wait_seconds)
    if line is None:
        say("revise", f"{ref} does not show version 2 of {lesson_id}")
        return False
    say("revise", f"{ref} item after {github.writes[key] - writes} more write(s):\n{line}")
    for placed in checklists:
        issue = placed.work_item_ref.partition(":")[2]
        shown = await until(partial(_jira_line, jira, issue, placed.id), wait_seconds)
        say("revise", f"{placed.work_item_ref} item: {shown or 'not updated'}")
        if shown is None:
            return False
    return github.writes[key] - writes == 1
