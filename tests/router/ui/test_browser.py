"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the app served
by uvicorn on a loopback port over a seeded SQLite file.

Each test signs in through the sign-in form as a person would, and every page it reaches is
photographed (full page, under the test's tmp_path) and checked with axe-core: no violation of
impact serious or critical. `CAIRN_SCREENSHOTS=DIR` also writes `overview.png` and
`compliance.png` there (the README's pictures). Without Chromium the module is skipped, except
under CI=true, where it fails: there the browser is required, not optional.

test_pages.py covers the same rules over plain HTTP, quickly and on both backends.
"""

import base64
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from axe_playwright_python.sync_playwright import Axe
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, Response, sync_playwright
from pydantic import SecretStr, TypeAdapter

from connectors.generic.webhook import sign
from core.access import Principal, Role
from core.base import utcnow
from core.lesson import Lesson, LessonStatus, Mandate
from core.placement import PlacementState
from router.access.operator import cli_principal
from router.access.tokens import TokenService
from router.cli import main
from router.compose import build_runtime
from router.http.app import create_app
from router.lessons.service import LessonService
from router.settings import Settings
from store import lessons, migrate, placements, waivers
from store.engine import Database
from tests.conftest import IN_CI
from tests.router.support import DRAFT, EXAMPLES, PR, PR_REF, drain

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
BLOCKING = ("serious", "critical")
README_SHOTS = "CAIRN_SCREENSHOTS"

OWNER = Principal("token:dana", frozenset({Role.OWNER}), frozenset({"platform"}))
"""Who captured the drafts: nobody who signs in below, so any reviewer may approve them."""
SEED_REVIEWER = Principal("token:sam", frozenset({Role.REVIEWER}))
TO_PUBLISH = "size-pools-from-workers"
"""In review: the reviewer approves and publishes it from the page."""
WAITING = "bound-retry-budgets"
"""In review, and stays there: its approve form is what readers must not see."""
APPROVED = "pin-base-images"
"""Approved, waiting to be published: its publish button is what readers must not see."""
UNSUBMITTED = "document-rollbacks"
"""A draft its owner has not submitted yet."""
ROLES = ("admin", "reviewer", "compliance", "reader")


@pytest.fixture(scope="module", autouse=True)
def _chromium_present() -> None:
    """Skip without Chromium, or fail under CI=true (before anything is started)."""
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the browser tests are required, not optional)")
        pytest.skip(message)


# ---- the seeded service on a loopback port ----------------------------------------------------


@dataclass(frozen=True)
class Site:
    url: str
    database_url: str
    db: Database
    tokens: dict[str, str]

    def lesson(self, lesson_id: str) -> Lesson:
        with self.db.transaction() as session:
            found = lessons.get(session, lesson_id)
        assert found is not None, lesson_id
        return found


def _draft(lesson_id: str, title: str, statement: str) -> Lesson:
    return Lesson.model_validate(
        {**DRAFT, "id": lesson_id, "title": title, "statement": statement, "version": 1},
        strict=False,
    )


def _seed(db: Database) -> None:
    """The example lessons (`derive-pool-size` made mandatory, `cache-bust-css` at version 2, so
    its page shows a diff), and drafts captured by an owner: in review, approved, unsubmitted."""
    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    with db.transaction() as session:
        for lesson in found:
            changes: dict[str, object] = {"status": LessonStatus.DRAFT}
            if lesson.id == "derive-pool-size":
                changes["mandate"] = Mandate.REQUIRED
            lessons.add(session, lesson.model_copy(update=changes), utcnow())
            lessons.publish(session, lesson.id, utcnow())
    service = LessonService(db)
    operator = cli_principal("tests")
    service.revise("cache-bust-css", operator)
    service.edit(
        "cache-bust-css",
        {
            "statement": (
                "Fingerprint every static asset (stylesheets, scripts, fonts and images) and "
                "serve it with a long cache lifetime, so that a deploy never mixes old and new."
            )
        },
        operator,
    )
    service.submit("cache-bust-css", operator)
    service.approve("cache-bust-css", SEED_REVIEWER, notes="clearer")
    service.publish("cache-bust-css", SEED_REVIEWER)
    drafts = (
        (TO_PUBLISH, "Size connection pools from the worker count", "Recompute pool limits."),
        (WAITING, "Bound retry budgets per request", "Cap retries so a slow call cannot storm."),
        (APPROVED, "Pin base images by digest", "Build from a digest, never from a moving tag."),
        (UNSUBMITTED, "Document every rollback", "Write down how each deploy is rolled back."),
    )
    for lesson_id, title, statement in drafts:
        service.create(_draft(lesson_id, title, statement), OWNER)
        if lesson_id != UNSUBMITTED:
            service.submit(lesson_id, OWNER)
    service.approve(APPROVED, SEED_REVIEWER, notes="applies to every image we build")


def _place_the_pull_request(url: str, secret: str, db: Database) -> None:
    """The fixture pull request arrives at the generic webhook; its lessons are placed."""
    body = PR.read_bytes()
    answer = httpx.post(f"{url}/hooks/generic", content=body, headers=sign(secret, "pr-1", body))
    assert answer.status_code == 202, answer.text
    drain(db)
    # No GitHub target is configured here: record the embed as the target stage would.
    with db.transaction() as session:
        placed = placements.for_work_item(session, PR_REF)
        assert placed, "the pull request received no lesson"
        for placement in placed:
            embedded = {"state": PlacementState.EMBEDDED, "handle": "cairn-1"}
            placements.update(session, placement.model_copy(update=embedded))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("served")
    rules = base / "rules"
    rules.mkdir()
    for name in ("organisation.yaml", "team-payments.yaml"):
        shutil.copy(EXAMPLES / name, rules / name)
    database_url = f"sqlite:///{base / 'cairn.db'}"
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    db = Database(database_url)
    migrate.upgrade(db)
    _seed(db)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=SecretStr(database_url),
        generic_webhook_secret=SecretStr(secret),
        poll_interval=0.05,
        rules_path=rules,
        port=port,
        public_url=url,
    )
    app = create_app(build_runtime(settings))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        _place_the_pull_request(url, secret, db)
        tokens = {
            role: TokenService(db)
            .create(f"ui-{role}", Role(role), (), None, cli_principal("tests"))
            .secret
            for role in ROLES
        }
        yield Site(url, database_url, db, tokens)
    finally:
        server.should_exit = True
        thread.join(15)
        listener.close()
        db.dispose()


# ---- the browser, sessions, and a look at each page -------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Look:
    """Photographs each page a test reaches and checks it with axe-core."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []
        self.csp: list[str] = []
        self._axe = Axe()

    def watch(self, page: Page) -> None:
        """Note anything the page's Content-Security-Policy blocked."""
        page.on(
            "console",
            lambda message: (
                self.csp.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )

    def __call__(self, page: Page, name: str, *, readme: str | None = None) -> None:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True, animations="disabled")
        self.taken.append(path)
        wanted = os.environ.get(README_SHOTS)
        if readme and wanted:
            Path(wanted).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(wanted) / readme)
        results = self._axe.run(page)
        blocking = [v for v in results.response["violations"] if v["impact"] in BLOCKING]
        assert not blocking, f"axe on {name} ({page.url}):\n" + "\n".join(
            f"- {v['id']} ({v['impact']}): {v['help']} at "
            + "; ".join(", ".join(node["target"]) for node in v["nodes"][:5])
            for v in blocking
        )
        assert not self.csp, f"the page's CSP blocked something on {name}: {self.csp}"


@pytest.fixture
def look(tmp_path: Path) -> Look:
    return Look(tmp_path / "screenshots")


SignIn = Callable[..., Page]


@pytest.fixture
def sign_in(browser: Browser, site: Site, look: Look) -> Iterator[SignIn]:
    """Open a fresh browser context (its own cookies) and sign in through the form."""
    contexts: list[Any] = []

    def open_session(role: str, start: str = "/ui/", *, photograph: bool = False) -> Page:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        look.watch(page)
        page.goto(site.url + start)
        assert urlsplit(page.url).path == "/ui/sign-in", page.url
        if photograph:
            look(page, "sign-in")
        page.get_by_label("API token").fill(site.tokens[role])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(site.url + start)
        assert f"token:ui-{role}" in page.locator("header .who").inner_text()
        return page

    yield open_session
    for context in contexts:
        context.close()


def _form_token(page: Page) -> str:
    value = page.locator("form[action='/ui/sign-out'] input[name=csrf]").get_attribute("value")
    assert value
    return value


# ---- the journeys ---------------------------------------------------------------------------


def test_sign_in_search_and_open_a_lesson(sign_in: SignIn, site: Site, look: Look) -> None:
    page = sign_in("reader", "/ui/lessons", photograph=True)  # sent to sign in, then back
    look(page, "lessons")
    facets = page.locator("aside.facets")
    facets.get_by_role("link", name="required", exact=True).click()
    page.wait_for_url(lambda url: "mandate=required" in url)
    assert "mandate: required" in page.locator(".chosen").inner_text()
    assert page.get_by_role("link", name="Derive the database pool size").count() == 1
    assert page.get_by_role("link", name="Fingerprint static assets").count() == 0
    look(page, "lessons-required")
    page.get_by_role("link", name="clear filters").click()
    page.wait_for_url(lambda url: "mandate" not in url)
    page.get_by_label("Search lessons").fill("fingerprint")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(lambda url: "q=fingerprint" in url)
    assert parse_qs(urlsplit(page.url).query)["q"] == ["fingerprint"]
    assert page.locator("#results-h").inner_text() == "1 lesson"
    look(page, "lessons-search")
    page.get_by_role("link", name="Fingerprint static assets").click()
    page.wait_for_url(site.url + "/ui/lessons/cache-bust-css")
    assert page.get_by_role("heading", level=1).inner_text() == "Fingerprint static assets"
    assert "version 2" in page.locator(".meta").first.inner_text()
    diff = page.get_by_role("region", name="Changes from version 1 to version 2")
    assert "long cache lifetime" in diff.inner_text()
    look(page, "lesson")


def test_a_reviewer_approves_and_publishes_a_draft(sign_in: SignIn, site: Site, look: Look) -> None:
    page = sign_in("reviewer", "/ui/review")
    look(page, "review")
    card = page.locator("article.card", has_text=TO_PUBLISH)
    card.locator("summary", has_text="Approve").click()
    card.get_by_label("Services (comma-separated)").fill("payments-api, ledger-api")
    card.get_by_label("Teams", exact=True).fill("payments")
    card.get_by_label("What must be adapted").fill("Use the worker count of the deploy.")
    card.get_by_label("Mandate").select_option("required")
    card.get_by_label("Review notes").fill("Holds for every service that sizes its own pool.")
    look(page, "review-approve-form")
    card.get_by_role("button", name="Approve").click()
    page.wait_for_url(site.url + "/ui/review?done=approved")
    assert page.get_by_role("status").inner_text() == "Approved."
    card = page.locator("article.card", has_text=TO_PUBLISH)
    assert "approved by token:ui-reviewer" in card.inner_text()
    look(page, "review-approved")
    card.get_by_role("button", name="Publish version 1").click()
    page.wait_for_url(site.url + f"/ui/lessons/{TO_PUBLISH}")
    meta = page.locator("p.meta").first.inner_text()
    assert "published" in meta and "required" in meta, meta
    assert "Use the worker count of the deploy." in page.locator("main").inner_text()
    assert "Published: 1." in page.locator("main").inner_text()
    look(page, "published-lesson")

    stored = site.lesson(TO_PUBLISH)
    assert stored.status == LessonStatus.PUBLISHED
    assert stored.mandate == Mandate.REQUIRED
    assert stored.applicability.services == ("payments-api", "ledger-api")
    assert stored.applicability.teams == ("payments",)
    assert stored.review is not None and stored.review.reviewer == "token:ui-reviewer"
    api = httpx.get(
        f"{site.url}/api/v1/lessons/{TO_PUBLISH}",
        headers={"Authorization": f"Bearer {site.tokens['reader']}"},
    )
    assert api.status_code == 200, api.text
    assert api.json()["status"] == "published"
    assert api.json()["published_versions"] == [1]


def test_a_compliance_cell_opens_its_evidence_chain(
    sign_in: SignIn, site: Site, look: Look
) -> None:
    page = sign_in("compliance", "/ui/compliance")
    look(page, "compliance")
    matrix = page.locator("table.matrix")
    matrix.locator("a[href*='lesson=derive-pool-size'][href*='team=payments']").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/ui/compliance/cell")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == "Evidence: derive-pool-size × payments"
    chain = page.locator("article.chain").first
    text = chain.inner_text()
    assert "content hash" in text and "rule set" in text and "Audit log" in text, text
    assert PR_REF in text
    look(page, "cell")
    chain.get_by_role("link", name=PR_REF).click()
    page.wait_for_url(lambda url: urlsplit(url).path.startswith("/ui/work/"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Lessons placed in {PR_REF}"
    assert page.get_by_role("link", name="derive-pool-size").count() == 1
    look(page, "work-item")


def test_the_downloaded_csv_is_the_cli_report(sign_in: SignIn, site: Site, look: Look) -> None:
    today = utcnow().date()
    page = sign_in("compliance", "/ui/compliance")
    look(page, "compliance")
    link = page.get_by_role("link", name="Download CSV")
    query = parse_qs(urlsplit(link.get_attribute("href") or "").query)
    start, end = query["from"][0], query["to"][0]
    # The page's default period: the last 90 days, ending today (checked twice: midnight).
    assert end in {str(today), str(utcnow().date())}, end
    assert start == str(date.fromisoformat(end) - timedelta(days=89))
    drain(site.db)
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == f"cairn-compliance-{start}-{end}.csv"
    saved = look.directory.parent / download.suggested_filename
    download.save_as(saved)
    downloaded = saved.read_bytes()

    result = CliRunner().invoke(
        main,
        ["report", "compliance", "--format", "csv", "--from", start, "--to", end],
        env={"CAIRN_DATABASE_URL": site.database_url},
    )
    assert result.exit_code == 0, result.output
    assert downloaded == result.stdout_bytes
    lines = downloaded.decode().splitlines()
    assert lines[0] == "lesson,team,cell,reason,placements,waiver,why"
    assert any(line.startswith("derive-pool-size,payments,") for line in lines[1:]), lines


def test_every_page_passes_axe(sign_in: SignIn, site: Site, look: Look) -> None:
    """An administrator sees every control; each page, with its folded parts open, is checked."""
    page = sign_in("admin")
    assert page.get_by_role("heading", name="Queue health").count() == 1
    look(page, "overview", readme="overview.png")
    page.locator("summary", has_text="The numbers behind the chart").click()
    look(page, "overview-numbers")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Lessons").click()
    page.wait_for_url(site.url + "/ui/lessons")
    look(page, "lessons")
    page.get_by_role("link", name="Derive the database pool size").click()
    page.wait_for_url(site.url + "/ui/lessons/derive-pool-size")
    look(page, "lesson")

    page.goto(site.url + "/ui/review")
    for summary in page.locator("article.card summary").all():
        summary.click()
    assert page.locator("form[action$='/approve']").count() >= 1
    assert page.locator(f"form[action='/ui/lessons/{APPROVED}/publish']").count() == 1
    assert page.locator(f"form[action='/ui/lessons/{UNSUBMITTED}/submit']").count() == 1
    look(page, "review")
    page.locator("article.card", has_text=WAITING).get_by_role("link", name="Edit").click()
    page.wait_for_url(site.url + f"/ui/lessons/{WAITING}/edit")
    look(page, "edit")

    page.goto(site.url + "/ui/compliance")
    look(page, "compliance", readme="compliance.png")
    page.locator("summary", has_text="Grant a waiver").click()
    look(page, "compliance-waiver-form")
    page.locator("table.matrix td.cell a").first.click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/ui/compliance/cell")
    look(page, "cell")

    page.goto(site.url + "/ui/rules")
    look(page, "rules")
    page.get_by_label("Draft rule pack (YAML)").fill((EXAMPLES / "organisation.yaml").read_text())
    page.get_by_role("button", name="Run backtest").click()
    page.wait_for_url(site.url + "/ui/rules/backtest")
    assert "work-item events" in page.locator("main").inner_text()
    look(page, "rules-backtest")

    page.goto(site.url + "/ui/lessons/derive-pool-size")
    page.get_by_role("link", name=PR_REF).first.click()
    page.wait_for_url(lambda url: urlsplit(url).path.startswith("/ui/work/"))
    assert page.get_by_role("heading", level=1).inner_text() == f"Lessons placed in {PR_REF}"
    look(page, "work-item")


def _review_actions(page: Page) -> int:
    return page.locator(
        "form[action$='/approve'], form[action$='/publish'], form[action$='/submit']"
    ).count()


def test_readers_and_compliance_see_no_write_button_and_forged_posts_get_403(
    sign_in: SignIn, site: Site, look: Look
) -> None:
    # The control: a reviewer is offered both actions on the same queue.
    reviewer = sign_in("reviewer", "/ui/review")
    assert reviewer.locator(f"form[action='/ui/lessons/{WAITING}/approve']").count() == 1
    assert reviewer.locator(f"form[action='/ui/lessons/{APPROVED}/publish']").count() == 1

    sessions = {role: sign_in(role, "/ui/review") for role in ("reader", "compliance")}
    for role, page in sessions.items():
        text = page.locator("main").inner_text()
        assert WAITING in text and APPROVED in text, role
        assert _review_actions(page) == 0, role
        assert page.get_by_role("button").all_inner_texts() == ["Sign out"], role
        look(page, f"review-as-{role}")
        page.goto(site.url + "/ui/compliance")
        waiver = page.locator("form[action='/ui/waivers']")
        assert waiver.count() == (1 if role == "compliance" else 0), role
        assert _review_actions(page) == 0, role
        look(page, f"compliance-as-{role}")

    reader, compliance = sessions["reader"], sessions["compliance"]
    approve = f"{site.url}/ui/lessons/{WAITING}/approve"
    # The reader's own, valid form token: the role is what is missing.
    forged = reader.request.post(
        approve, form={"csrf": _form_token(reader), "mandate": "required"}, max_redirects=0
    )
    assert forged.status == 403 and "needs the role" in forged.text(), forged.text()
    # No form token, then another session's: refused, though the role may grant waivers.
    for form in ({"reason": "x"}, {"csrf": _form_token(reader), "reason": "x"}):
        forged = compliance.request.post(
            f"{site.url}/ui/waivers",
            form={"lesson": "derive-pool-size", "team": "payments", "expires": "1d", **form},
            max_redirects=0,
        )
        assert forged.status == 403 and "form token" in forged.text(), forged.text()
    forged = reviewer.request.post(
        f"{site.url}/ui/lessons/{APPROVED}/publish",
        form={"csrf": _form_token(compliance)},
        max_redirects=0,
    )
    assert forged.status == 403 and "form token" in forged.text(), forged.text()

    # The reviewer's real form with its token taken out of the page before it is sent.
    card = reviewer.locator("article.card", has_text=WAITING)
    card.locator("summary", has_text="Approve").click()
    card.locator("input[name=csrf]").evaluate("field => field.remove()")
    card.get_by_label("Mandate").select_option("required")
    with reviewer.expect_response(lambda r: r.request.method == "POST") as answered:
        card.get_by_role("button", name="Approve").click()
    response: Response = answered.value
    assert response.status == 403
    reviewer.wait_for_load_state()
    assert reviewer.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert "form token" in reviewer.get_by_role("alert").inner_text()
    look(reviewer, "forged-approve-refused")

    assert site.lesson(WAITING).review is None
    assert site.lesson(WAITING).status == LessonStatus.IN_REVIEW
    assert site.lesson(APPROVED).status == LessonStatus.IN_REVIEW
    with site.db.transaction() as session:
        assert not waivers.listed(session)
