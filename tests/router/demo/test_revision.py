"""The revision demo step runs against a served Cairn and the fakes, after the GitHub step."""

import asyncio
from pathlib import Path

import httpx
from pydantic import TypeAdapter

from connectors.github import section
from connectors.github.fake import FakeGitHub
from connectors.jira.fake import JiraFake
from connectors.target import Target
from core.base import utcnow
from core.lesson import Lesson, LessonStatus, Mandate
from core.work import System
from router.demo.github import DEMO_REPO, github_demo_target, run_github_demo
from router.demo.review import DemoApi
from router.demo.revision import STATEMENT, run_revision_demo
from store import lessons, placements
from store.engine import Database
from tests.router.demo.support import SECRET, demo_database, served
from tests.router.support import EXAMPLES


def _publish_required(db: Database) -> None:
    """The example lessons, published; the pool-size one required (as the demo's own is)."""
    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    with db.transaction() as session:
        for lesson in found:
            mandate = Mandate.REQUIRED if lesson.id == "derive-pool-size" else lesson.mandate
            draft = lesson.model_copy(update={"status": LessonStatus.DRAFT, "mandate": mandate})
            lessons.add(session, draft, utcnow())
            lessons.publish(session, lesson.id, utcnow())


def test_the_revised_lesson_shows_in_the_pull_request_marked(tmp_path: Path) -> None:
    db, settings = demo_database(tmp_path, EXAMPLES)
    _publish_required(db)
    secret, said = SECRET, []

    def say(step: str, text: str) -> None:
        said.append(f"{step}: {text}")

    async def scenario(github: FakeGitHub, jira: JiraFake) -> bool:
        targets: dict[System, Target] = {
            System.GITHUB: github_demo_target(github),
            System.JIRA: jira.target(),
        }
        async with served(settings, targets) as cairn_url:
            assert await run_github_demo(say, cairn_url, db, github, secret), said
            async with httpx.AsyncClient(base_url=cairn_url, timeout=10) as client:
                return await run_revision_demo(say, DemoApi(client, db), db, github, jira)

    with FakeGitHub().running() as github, JiraFake().running() as jira:
        assert asyncio.run(scenario(github, jira)), "\n".join(said)
        body = github.pulls[(DEMO_REPO, 1)].body
    ref = f"github:{DEMO_REPO}#1"
    with db.transaction() as session:
        [revised] = [
            p for p in placements.for_work_item(session, ref) if p.lesson_id == "derive-pool-size"
        ]
    db.dispose()
    assert (revised.lesson_version, revised.placed_version) == (2, 1)
    # The item the engineer ticked keeps its tick and shows the new text, marked.
    [line] = [ln for ln in (body or "").splitlines() if section.marker_id(revised.id) in ln]
    assert line.startswith("- [x] **Derive the database pool size from the worker count**: ")
    assert f"{section.escape(STATEMENT)} _(updated to v2)_ <!-- " in line
    assert any(line in text for text in said)
    assert said[-2].startswith("revise: derive-pool-size@2 revised and submitted by token:demo-")
