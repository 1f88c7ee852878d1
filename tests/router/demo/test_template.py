"""The template demo step runs against a served Cairn and the GitHub fake, after the GitHub step
(which makes the demo repository known to Cairn), with the rules directory the demo writes."""

import asyncio
from pathlib import Path

import httpx

from connectors.github import section, template
from connectors.github.fake import FakeGitHub
from core.placement import PlacementState, SignalKind
from core.work import System
from router.demo.github import DEMO_REPO, github_demo_target, run_github_demo
from router.demo.review import DemoApi
from router.demo.template import LESSON, LESSON_ID, demo_rules, run_template_demo
from router.ruleset.source import load_rule_set
from store import placements
from tests.router.demo.support import SECRET, demo_database, served
from tests.router.support import EXAMPLES, publish_examples


def test_the_demo_rules_are_the_examples_and_the_template_pack(tmp_path: Path) -> None:
    rule_set = load_rule_set(demo_rules(EXAMPLES, tmp_path / "demo-rules"))
    examples = load_rule_set(EXAMPLES)
    assert [p.pack for p in rule_set.packs] == sorted(
        [*(p.pack for p in examples.packs), "demo-templates"]
    )
    [pack] = [p for p in rule_set.packs if p.pack == "demo-templates"]
    [rule] = pack.rules
    assert rule.then.form is not None and rule.then.form.value == "github.pr_template"
    assert rule.lesson.ids == (LESSON_ID,)
    assert rule.work_item.projects == (DEMO_REPO,)


def test_the_template_pull_request_carries_the_lesson_and_merging_verifies_it(
    tmp_path: Path,
) -> None:
    db, settings = demo_database(tmp_path, demo_rules(EXAMPLES, tmp_path / "rules"))
    publish_examples(db)
    secret, said = SECRET, []

    def say(step: str, text: str) -> None:
        said.append(f"{step}: {text}")

    async def scenario(github: FakeGitHub) -> bool:
        async with served(settings, {System.GITHUB: github_demo_target(github)}) as cairn_url:
            assert await run_github_demo(say, cairn_url, db, github, secret), said
            async with httpx.AsyncClient(base_url=cairn_url, timeout=10) as client:
                return await run_template_demo(say, DemoApi(client, db), db, github, secret)

    with FakeGitHub().running() as github:
        assert asyncio.run(scenario(github)), "\n".join(said)
        pulls = {n: p for (repo, n), p in github.pulls.items() if repo == DEMO_REPO}
        on_branch = github.files(DEMO_REPO, template.BRANCH)[template.DEFAULT_PATH]
        on_main = github.files(DEMO_REPO)[template.DEFAULT_PATH]
    with db.transaction() as session:
        [placed] = placements.for_work_item(session, template.ref(DEMO_REPO))
        kinds = {s.kind for s in placements.signals(session, placed.id)}
        on_pull = placements.for_work_item(session, f"github:{DEMO_REPO}#1")
    db.dispose()
    # One template pull request, from Cairn's branch, now merged; the demo's own PR is #1.
    [number] = [n for n, p in pulls.items() if p.head_ref == template.BRANCH]
    assert number != 1
    assert (pulls[number].author, pulls[number].merged) == ("cairn-bot", True)
    marker = section.marker_id(placed.id)
    assert marker in on_branch and marker in on_main
    assert str(LESSON["statement"]) in on_branch
    assert placed.lesson_id == LESSON_ID
    assert placed.state == PlacementState.COMPLETED
    assert kinds == {SignalKind.TICKED, SignalKind.MERGED_CLEAN}
    # The template lesson stays out of the demo's pull request.
    assert LESSON_ID not in {p.lesson_id for p in on_pull}
    assert LESSON_ID not in (pulls[1].body or "")
    # What the demo prints: the pull request, the file on the branch, the item, the outcome.
    assert any(f'#{number} "{template.TITLE}" from cairn/lessons' in line for line in said)
    assert f"template: {template.DEFAULT_PATH} on cairn/lessons, its Lessons section's items:" in (
        said
    )
    assert any(line.startswith("template: - [ ] **Say how") and marker in line for line in said)
    assert said[-1].startswith(
        f"template: {template.ref(DEMO_REPO)} <- {LESSON_ID}@1: completed (verified)"
    )
