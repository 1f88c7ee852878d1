"""The pull-request-template part of `cairn demo`: a lesson reaches a repository's template
through Cairn's own pull request, and merging that pull request verifies it.

The demo serves its rules from a directory it writes (`demo_rules`): the example packs and one
pack of its own whose `github.pr_template` rule selects the template lesson by id, so no example
rule places that lesson on the demo's pull request or Jira issue, and the other steps see the
same lessons as before. The lesson is published through the API; `diffuse` plans it on the
template of the demo repository (Cairn knows the repository from the GitHub step's pull
request) and `embed` opens one pull request from `cairn/lessons`. The demo merges it in the fake
and delivers GitHub's signed `pull_request` `closed` webhook: the placement ends completed, its
tier verified.
"""

import shutil
from collections.abc import Callable
from pathlib import Path

from connectors.github import section, template
from connectors.github.fake import FakeGitHub, FakePull
from core.adoption import Tier, tier_of
from core.base import utcnow
from core.placement import Placement, PlacementState
from router.demo.github import DEMO_REPO
from router.demo.review import DemoApi, until
from store import placements
from store.engine import Database

Say = Callable[[str, str], None]

LESSON_ID = "state-the-rollback"
OWNER = "platform"
LESSON = {
    "id": LESSON_ID,
    "owner": OWNER,
    "title": "Say how to roll the change back",
    "statement": (
        "Every pull request says how to undo it: the revert, the flag to turn off, or the "
        "migration's down step."
    ),
    "applicability": {"tags": ["change-management"]},
}
NOTES = "Holds for every repository: the template is where authors see it before they write."
PACK_FILE = "demo-templates.yaml"
PACK = f"""\
# The demo's own pack: one lesson, selected by its id so that no other rule places it, reaches
# the demo repository's pull-request template through a pull request from cairn/lessons.
pack: demo-templates
level: organisation
priority: 100
rules:
  - id: rollback-in-the-pr-template
    description: The rollback lesson belongs in every pull request's template.
    lesson:
      ids: [{LESSON_ID}]
    work_item:
      systems: [github]
      projects: ["{DEMO_REPO}"]
    then:
      form: github.pr_template
      text: "{{{{ lesson.title }}}}: {{{{ lesson.statement }}}}"
"""
MERGED_BY = "payments-lead"


def demo_rules(examples: Path, into: Path) -> Path:
    """The rules directory the demo serves: the example packs and the template pack; returns it.

    A directory of its own rather than a rule in the examples, which the README's walkthroughs
    validate and backtest as they are."""
    into.mkdir(parents=True, exist_ok=True)
    for pack in sorted(examples.glob("*.yaml")):
        shutil.copyfile(pack, into / pack.name)
    (into / PACK_FILE).write_text(PACK, encoding="utf-8")
    return into


def _placement(db: Database) -> Placement | None:
    """The template lesson's placement on the demo repository's template, if planned."""
    with db.transaction() as session:
        found = placements.for_work_item(session, template.ref(DEMO_REPO))
    return next((p for p in found if p.lesson_id == LESSON_ID), None)


def _open_pull(fake: FakeGitHub) -> FakePull | None:
    """Cairn's open template pull request in the demo repository, if there is one."""
    with fake.lock:
        return next(
            (
                pull
                for (repo, _number), pull in fake.pulls.items()
                if repo == DEMO_REPO
                and template.is_own_branch(pull.head_ref)
                and pull.state == "open"
            ),
            None,
        )


def _shown(db: Database, fake: FakeGitHub) -> tuple[Placement, FakePull, str, list[str]] | None:
    """The embedded placement, its pull request, and the template's path and item lines on
    `cairn/lessons` showing it; None until all of them are there."""
    placement = _placement(db)
    pull = _open_pull(fake)
    if placement is None or placement.state != PlacementState.EMBEDDED or pull is None:
        return None
    marker = section.marker_id(placement.id)
    with fake.lock:
        files = fake.files(DEMO_REPO, template.BRANCH)
    for path, text in sorted(files.items()):
        if marker in text and marker in (pull.body or ""):
            inside = section.extract(text) or ""
            lines = [line for line in inside.splitlines() if section.MARKER_PREFIX in line]
            return placement, pull, path, lines
    return None


def _verified(db: Database) -> tuple[Placement, list[str]] | None:
    """The placement once it is completed with a verifying signal, with its signal kinds."""
    placement = _placement(db)
    if placement is None or placement.state != PlacementState.COMPLETED:
        return None
    with db.transaction() as session:
        signals = placements.signals(session, placement.id)
    if tier_of(placement, signals, utcnow()) != Tier.VERIFIED:
        return None
    return placement, [s.kind.value for s in signals]


async def run_template_demo(
    say: Say,
    api: DemoApi,
    db: Database,
    fake: FakeGitHub,
    webhook_secret: str,
    *,
    wait_seconds: float = 20.0,
) -> bool:
    """Publish the template lesson, see Cairn's template pull request carry it, merge it and
    see the placement verified; True if all of it happened."""
    created = await api.call(f"owner:{OWNER}", "POST", "/api/v1/lessons", LESSON)
    published = (
        await api.review(LESSON_ID, OWNER, {"notes": NOTES}) if created.is_success else created
    )
    if published.status_code != 200:
        say("template", f"{LESSON_ID}: {published.status_code} {published.text}")
        return False
    done = published.json()
    say(
        "template",
        f"{done['id']}@{done['version']} published ({done['mandate']}); rule "
        f"demo-templates/rollback-in-the-pr-template puts it in {DEMO_REPO}'s pull request "
        "template",
    )
    shown = await until(lambda: _shown(db, fake), wait_seconds)
    if shown is None:
        say("template", f"no template pull request in {DEMO_REPO} shows {LESSON_ID}")
        return False
    placement, pull, path, lines = shown
    say(
        "template",
        f'pull request {DEMO_REPO}#{pull.number} "{pull.title}" from {template.BRANCH} '
        f"into {pull.base}, by {pull.author}",
    )
    say("template", f"{path} on {template.BRANCH}, its Lessons section's items:")
    for line in lines:
        say("template", line)
    delivery = fake.merge((DEMO_REPO, pull.number), by=MERGED_BY)
    headers, body = FakeGitHub.signed(delivery, webhook_secret)
    response = await api.client.post("/hooks/github", content=body, headers=headers)
    say(
        "template",
        f"{MERGED_BY} merges {DEMO_REPO}#{pull.number}; pull_request.closed (merged): "
        f"{response.status_code}",
    )
    if response.status_code != 202:
        return False
    verified = await until(lambda: _verified(db), wait_seconds)
    if verified is None:
        say("template", f"{template.ref(DEMO_REPO)} <- {LESSON_ID} was not verified")
        return False
    final, kinds = verified
    with fake.lock:
        landed = section.marker_id(placement.id) in fake.files(DEMO_REPO).get(path, "")
    say(
        "template",
        f"{final.work_item_ref} <- {final.lesson_id}@{final.lesson_version}: "
        f"{final.state.value} ({Tier.VERIFIED.value}), signals {kinds}; "
        f"{path} on {fake.default_branch(DEMO_REPO)} "
        f"{'shows the lesson' if landed else 'DOES NOT show the lesson'}",
    )
    return landed
