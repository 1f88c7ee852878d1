"""Capture from work, through the ingress with signed deliveries, on both databases: a Jira
postmortem reaching done (and a later edit), a closed GitHub issue labelled `lesson`, a merged
pull request adding a postmortem file; then the blameless path end to end: a name found, a
reviewer redacts it, the lesson is published and placed in a pull request that carries no name,
and only owners and admins read the original."""

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors import github as github_package
from connectors import jira as jira_package
from connectors.github.fake import Delivery, FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.jira.fake import JiraFake
from connectors.jira.webhook import sign as jira_sign
from core.access import Role
from core.base import utcnow
from core.lesson import Lesson
from core.team import Member, Team
from core.work import System
from router.access.operator import cli_principal
from router.access.tokens import TokenService
from store import audit, lessons, teams
from store.engine import Database
from tests.router.support import EXAMPLES, bearer, drain, serving
from tests.router.ui.test_pages import form_token

JIRA_SECRET = "jira-webhook-secret-0123456789"
GITHUB_SECRET = "github-webhook-secret"
JIRA_FIXTURES = Path(jira_package.__file__).parent / "fixtures"
GITHUB_FIXTURES = Path(github_package.__file__).parent / "fixtures"
POSTMORTEM_PATH = "docs/postmortems/2026-11-18-cache-stampede.md"
FILE_LESSON = "from-github-acme-payments-api-docs-postmortems-2026-11-18-cache-stampede-md"
POSTMORTEM = """---
title: Warm the cache before purging the CDN
statement: >-
  Before purging the CDN, warm the origin cache for the top pages and purge in batches, so a
  purge never sends every request to a cold origin at once. Priya Patel found this.
tags: [cdn, caching]
contributing_conditions:
  - The purge script purges every path at once.
  - The origin cache is empty after the nightly deploy.
confidence: medium
---
# Cache stampede after the CDN purge

## What happened
A full CDN purge sent every request to the origin, whose cache was cold after the deploy.
"""
RULES = """pack: capture-e2e
level: organisation
priority: 100
rules:
  - id: cdn-lessons-on-prs
    lesson: {tags: [cdn]}
    work_item: {systems: [github], paths: ["static/**"]}
    then:
      form: github.pr_checklist
      due: 7d
      text: "{{ lesson.title }}: {{ lesson.statement }}"
"""


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _lesson(db: Database, lesson_id: str) -> Lesson:
    with db.transaction() as session:
        found = lessons.get(session, lesson_id)
    assert found is not None, f"no lesson {lesson_id}"
    return found


def _actions(db: Database, lesson_id: str) -> list[str]:
    with db.transaction() as session:
        return [e.action for e in audit.entries(session) if e.subject == lesson_id]


# --- Jira ---------------------------------------------------------------------------------------


@pytest.fixture
def jira_fake() -> Iterator[JiraFake]:
    with JiraFake().running() as fake:
        yield fake


def _post_jira(client: TestClient, path: Path, identifier: str) -> int:
    body = path.read_bytes()
    headers = jira_sign(JIRA_SECRET, body, identifier)
    return client.post("/hooks/jira", content=body, headers=headers).status_code


def test_a_jira_postmortem_reaching_done_becomes_a_draft_and_edits_refresh_it(
    database_url: str, webhook_secret: str, jira_fake: JiraFake
) -> None:
    done = JIRA_FIXTURES / "issue_updated_postmortem_done.json"
    jira_fake.seed(_load(done)["issue"])
    jira_fake.add_remote_link(
        "OPS-7", "https://grafana.acme.example/d/ledger-pool", "Pool wait dashboard"
    )
    jira_fake.comment_as("OPS-7", "Added the timeline.", "7d32ce0fa4", "Sam Ortiz")
    with serving(
        database_url,
        webhook_secret,
        jira_webhook_secret=JIRA_SECRET,
        targets={System.JIRA: jira_fake.target()},
    ) as (client, db):
        assert _post_jira(client, done, "jira-d-1") == 202
        drain(db)
        lesson = _lesson(db, "from-jira-ops-7")
        assert lesson.status.value == "draft" and lesson.owner == "payments"
        assert lesson.title.startswith("Postmortem: ledger API connection pool exhausted")
        assert lesson.statement.startswith("Human error by Erin: derive the database pool size")
        assert "p99 latency rose to 4 s" in lesson.context.what_happened
        assert lesson.context.expected == "Doubling the workers doubles throughput."
        assert lesson.context.contributing_conditions == (
            "The pool size is a constant in the deployment manifest, not derived from the worker "
            "count.",
            "The load test ran with the old worker count.",
        )
        assert [str(u) for u in lesson.provenance.evidence_links] == [
            "https://acme.atlassian.net/browse/OPS-7",
            "https://acme.atlassian.net/browse/PAY-42",
            "https://grafana.acme.example/d/ledger-pool",
        ]
        assert [(s.ref, s.version) for s in lesson.provenance.sources] == [
            ("jira:OPS-7", "2026-11-25T10:00:00.000+0100")
        ]
        report = client.get("/api/v1/lessons/from-jira-ops-7/findings").json()
        found = {(f["kind"], f["term"]) for f in report["findings"]}
        assert ("person", "Erin Engineer") in found and ("person", "Erin") in found
        assert ("mention", "[~accountid:5b10ac8d82e05b22cc7d4ef5]") in found
        assert ("blame", "human error") in found
        assert report["publishable"] is False
        restricted = client.get("/api/v1/lessons/from-jira-ops-7/restricted").json()
        people = {(p["login"], p["name"], p["role"]) for p in restricted["people"]}
        assert ("7d32ce0fa4", "Sam Ortiz", "commenter") in people
        assert ("6c21bd9e93f16c33dd8e5fa6", "Priya Patel", "reporter") in people

        assert _post_jira(client, done, "jira-d-1") == 200  # a redelivery does nothing
        edited = JIRA_FIXTURES / "issue_updated_postmortem_edited.json"
        assert _post_jira(client, edited, "jira-d-2") == 202
        drain(db)
        refreshed = _lesson(db, "from-jira-ops-7")
        assert refreshed.context.contributing_conditions[-1] == (
            "No alert fires when requests wait for a pooled connection."
        )
        assert [s.version for s in refreshed.provenance.sources] == [
            "2026-11-25T10:00:00.000+0100",
            "2026-11-26T10:00:00.000+0100",
        ]
        assert _actions(db, "from-jira-ops-7") == ["lesson.captured", "lesson.capture_refreshed"]


def test_a_done_jira_issue_of_another_type_without_the_label_is_not_captured(
    sqlite_url: str, webhook_secret: str
) -> None:
    data = _load(JIRA_FIXTURES / "issue_updated_resolved.json")  # a Story, no lesson label
    body = json.dumps(data).encode()
    with serving(sqlite_url, webhook_secret, jira_webhook_secret=JIRA_SECRET) as (client, db):
        headers = jira_sign(JIRA_SECRET, body, "story-1")
        assert client.post("/hooks/jira", content=body, headers=headers).status_code == 202
        drain(db)
        assert client.get("/api/v1/lessons").json() == []
        data["issue"]["fields"]["labels"].append("lesson-learned")
        labelled = json.dumps(data).encode()
        headers = jira_sign(JIRA_SECRET, labelled, "story-2")
        assert client.post("/hooks/jira", content=labelled, headers=headers).status_code == 202
        drain(db)
        assert [x["id"] for x in client.get("/api/v1/lessons").json()] == ["from-jira-pay-42"]


# --- GitHub -------------------------------------------------------------------------------------


@pytest.fixture
def github_fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as fake:
        yield fake


def _github_target(fake: FakeGitHub) -> GitHubTarget:
    return fake.target()


def _post_github(
    client: TestClient, delivery: Delivery, headers: dict[str, str] | None = None
) -> int:
    signed, body = FakeGitHub.signed(delivery, GITHUB_SECRET)
    return client.post(
        "/hooks/github", content=body, headers={**signed, **(headers or {})}
    ).status_code


def test_a_closed_github_issue_labelled_lesson_becomes_a_draft_and_its_author_is_told(
    database_url: str, webhook_secret: str, github_fake: FakeGitHub
) -> None:
    payload = _load(GITHUB_FIXTURES / "issues__closed_lesson.json")
    github_fake.seed_issue(payload, [("sam-o", "The provider's sandbox answers in 2 s.")])
    with serving(
        database_url,
        webhook_secret,
        github_webhook_secret=GITHUB_SECRET,
        capture_notify_author=True,
        targets={System.GITHUB: _github_target(github_fake)},
    ) as (client, db):
        assert _post_github(client, Delivery("issues", payload)) == 202
        drain(db)
        lesson = _lesson(db, "from-github-acme-payments-api-77")
        assert lesson.owner == "payments"
        assert lesson.statement.startswith("Every retry path of a payment call")
        assert lesson.context.contributing_conditions == (
            "The manual retry tool builds a new idempotency key on every call.",
            "Timeouts on refunds are shorter than the provider's processing time.",
        )
        assert [str(u) for u in lesson.provenance.evidence_links] == [
            "https://github.com/acme/payments-api/issues/77"
        ]
        report = client.get(f"/api/v1/lessons/{lesson.id}/findings").json()
        assert {(f["kind"], f["term"]) for f in report["findings"]} == {("mention", "@dana-h")}
        people = client.get(f"/api/v1/lessons/{lesson.id}/restricted").json()["people"]
        assert {(p["login"], p["role"]) for p in people} == {
            ("priya-p", "author"),
            ("dana-h", "assignee"),
            ("sam-o", "commenter"),
        }
        comments = github_fake.comments[("acme/payments-api", 77)]
        told = [c for c in comments if "cairn:capture:" in c["body"]]
        assert len(told) == 1 and f"/ui/lessons/{lesson.id}" in told[0]["body"]
        assert report["notified"] == ["github:acme/payments-api#77"]
        # An unlabelled closed issue is acknowledged and not captured.
        unlabelled = json.loads(json.dumps(payload))
        unlabelled["issue"].update(number=78, labels=[])
        assert _post_github(client, Delivery("issues", unlabelled)) == 202
        drain(db)
        assert [x["id"] for x in client.get("/api/v1/lessons").json()] == [lesson.id]


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    target.mkdir()
    shutil.copy(EXAMPLES / "organisation.yaml", target / "organisation.yaml")
    (target / "capture-e2e.yaml").write_text(RULES)
    return target


def _team_map(db: Database) -> None:
    priya = Member(person="priya@acme.example", name="Priya Patel", logins={"github": "priya-p"})
    with db.transaction() as session:
        teams.replace_team(session, Team(name="payments", members=(priya,)), utcnow())


def test_a_merged_postmortem_file_is_captured_redacted_published_and_placed_without_a_name(
    database_url: str,
    webhook_secret: str,
    github_fake: FakeGitHub,
    rules_dir: Path,
) -> None:
    payload = _load(GITHUB_FIXTURES / "pull_request__closed_merged_postmortem.json")
    github_fake.seed_pull(payload, {POSTMORTEM_PATH: POSTMORTEM})
    with serving(
        database_url,
        webhook_secret,
        prepare=_team_map,
        rules_path=rules_dir,
        github_webhook_secret=GITHUB_SECRET,
        targets={System.GITHUB: _github_target(github_fake)},
    ) as (client, db):
        assert _post_github(client, Delivery("pull_request", payload)) == 202
        drain(db)
        lesson_id = FILE_LESSON
        lesson = _lesson(db, lesson_id)
        # Front matter fills the fields exactly; the sections fill what it leaves out.
        assert lesson.title == "Warm the cache before purging the CDN"
        assert lesson.applicability.tags == ("cdn", "caching")
        assert lesson.context.confidence.value == "medium"
        assert lesson.context.what_happened.startswith("A full CDN purge sent every request")
        assert lesson.owner == "payments"  # the author's team in the team map
        assert lesson.provenance.sources[0].ref == f"github:acme/payments-api:{POSTMORTEM_PATH}"
        assert "https://github.com/acme/payments-api/pull/512" in {
            str(u) for u in lesson.provenance.evidence_links
        }

        owner = bearer(db, "pay-owner", "owner", "payments")
        reviewer = bearer(db, "rev", "reviewer")
        reader = bearer(db, "read", "reader")
        compliance = bearer(db, "audit", "compliance")
        other_owner = bearer(db, "web-owner", "owner", "web")
        base = f"/api/v1/lessons/{lesson_id}"
        report = client.get(f"{base}/findings", headers=reader).json()
        names = [f for f in report["findings"] if f["kind"] == "person"]
        assert [f["term"] for f in names] == ["Priya Patel", "Priya"]
        assert names[0]["fields"] == ["statement"] and "Priya Patel" in names[0]["excerpt"]

        assert client.post(f"{base}/submit", headers=owner).status_code == 200
        assert client.post(f"{base}/approve", headers=reviewer).status_code == 200
        refused = client.post(f"{base}/publish", headers=reviewer)
        assert refused.status_code == 409 and "still names people" in refused.text
        assert (
            client.post(f"{base}/findings/{names[0]['id']}/redact", headers=reader).status_code
            == 403
        )
        redacted = client.post(f"{base}/findings/{names[0]['id']}/redact", headers=reviewer)
        assert redacted.status_code == 200, redacted.text
        assert [f["kind"] for f in redacted.json()["findings"]] == []
        assert redacted.json()["publishable"] is True
        assert client.post(f"{base}/publish", headers=reviewer).status_code == 200
        published = client.get(base, headers=reader).json()
        assert "Priya" not in json.dumps(published)
        assert published["statement"].endswith("[name removed] found this.")

        # Owners of the lesson's team and admins read the original; nobody else does.
        original = client.get(f"{base}/restricted", headers=owner)
        assert original.status_code == 200
        texts = [o["text"] for o in original.json()["originals"]]
        assert any("Priya Patel found this." in t for t in texts)
        assert client.get(f"{base}/restricted").status_code == 200  # admin
        for who in (reader, compliance, reviewer, other_owner):
            assert client.get(f"{base}/restricted", headers=who).status_code == 403

        # Placed into a pull request through the GitHub fake: the section carries no name.
        opened = github_fake.open_pull(
            "acme/payments-api", title="New banner", body="Swap the banner.", files=["static/a.css"]
        )
        assert _post_github(client, opened) == 202
        drain(db)
        number = opened.payload["number"]
        body = github_fake.pulls[("acme/payments-api", number)].body or ""
        assert "Warm the cache before purging the CDN" in body
        assert "Priya" not in body and "priya" not in body


def test_a_reviewer_may_keep_a_name_explicitly(
    sqlite_url: str, webhook_secret: str, github_fake: FakeGitHub
) -> None:
    payload = _load(GITHUB_FIXTURES / "pull_request__closed_merged_postmortem.json")
    github_fake.seed_pull(payload, {POSTMORTEM_PATH: POSTMORTEM})
    with serving(
        sqlite_url,
        webhook_secret,
        prepare=_team_map,
        github_webhook_secret=GITHUB_SECRET,
        targets={System.GITHUB: _github_target(github_fake)},
    ) as (client, db):
        assert _post_github(client, Delivery("pull_request", payload)) == 202
        drain(db)
        base = f"/api/v1/lessons/{FILE_LESSON}"
        for finding in client.get(f"{base}/findings").json()["findings"]:
            kept = client.post(f"{base}/findings/{finding['id']}/keep")
            assert kept.status_code == 200
        report = client.get(f"{base}/findings").json()
        assert {f["state"] for f in report["findings"]} == {"kept"}
        assert report["publishable"] is True
        assert {d["term"] for d in report["decisions"]} == {"Priya Patel", "Priya"}


def test_the_review_page_shows_findings_and_warnings_and_redacts_with_the_form_token(
    sqlite_url: str, webhook_secret: str, github_fake: FakeGitHub
) -> None:
    payload = _load(GITHUB_FIXTURES / "pull_request__closed_merged_postmortem.json")
    thin = "---\nstatement: Be more careful. Priya Patel knows.\n---\n# Purge\n"
    github_fake.seed_pull(payload, {POSTMORTEM_PATH: thin})
    with serving(
        sqlite_url,
        webhook_secret,
        prepare=_team_map,
        github_webhook_secret=GITHUB_SECRET,
        targets={System.GITHUB: _github_target(github_fake)},
    ) as (client, db):
        assert _post_github(client, Delivery("pull_request", payload)) == 202
        drain(db)
        browser = TestClient(client.app, base_url="http://testserver", follow_redirects=False)
        token = (
            TokenService(db)
            .create("ui-reviewer", Role.REVIEWER, (), None, cli_principal("tests"))
            .secret
        )
        nonce = form_token(browser.get("/ui/sign-in").text)
        signed = browser.post(
            "/ui/sign-in", data={"csrf": nonce, "token": token, "next": "/ui/review"}
        )
        assert signed.status_code == 303
        page = browser.get("/ui/review").text
        assert "reads like a slogan" in page and "No contributing conditions" in page
        assert "No evidence link" not in page  # the pull request and the file are evidence
        found = re.search(
            r'action="(/ui/lessons/[^"]+/findings/(person-[0-9a-f]{12})/redact)"', page
        )
        assert found is not None
        forged = browser.post(found.group(1), data={"csrf": "forged"})
        assert forged.status_code == 403
        done = browser.post(found.group(1), data={"csrf": form_token(page)})
        assert done.status_code == 303 and done.headers["location"] == "/ui/review?done=redacted"
        lesson_id = found.group(1).split("/")[3]
        assert "Priya Patel" not in _lesson(db, lesson_id).statement
