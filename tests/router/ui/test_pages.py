"""The dashboard over HTTP: sign-in, sessions, form tokens, policies, and each page's content.

The browser tests (test_browser.py) drive the same pages in Chromium; these cover the rules
behind them quickly and exhaustively, on SQLite and PostgreSQL.
"""

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from connectors.generic.webhook import sign
from core.access import Role
from core.base import utcnow
from core.lesson import Lesson, LessonStatus, Mandate
from core.placement import PlacementState
from router.access.operator import cli_principal
from router.access.tokens import TokenService
from router.http.guard import Access, declared_policy
from router.http.ui import oversight as ui_oversight
from router.http.ui import pages as ui_pages
from router.reports.adoption import Filters
from router.reports.compliance import ComplianceService
from router.reports.export import compliance_csv
from store import lessons, placements
from store.engine import Database
from tests.router.support import DRAFT as EXAMPLE_DRAFT
from tests.router.support import EXAMPLES, PR, PR_REF, drain, serving

DRAFT = {**EXAMPLE_DRAFT, "id": "ui-draft", "title": "Size pools from the worker count"}
RAISE = True
"""Tests see a server error as the exception it was; the hostile probe flips it to see a 500."""
TOKEN_SHAPE = re.compile(r"cairn_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


class Dashboard:
    """The app, its database, and a way to get a browser-like client signed in as a role."""

    def __init__(self, client: TestClient, db: Database, secret: str) -> None:
        self.client = client
        self.db = db
        self.secret = secret
        self.tokens: dict[str, str] = {}

    def token(self, name: str, role: str, *teams: str) -> str:
        if name not in self.tokens:
            created = TokenService(self.db).create(
                name, Role(role), teams, None, cli_principal("tests")
            )
            self.tokens[name] = created.secret
        return self.tokens[name]

    def browser(self) -> TestClient:
        """A client with no Authorization header: it has only the cookies it is given."""
        return TestClient(
            self.client.app,
            base_url="http://testserver",
            follow_redirects=False,
            raise_server_exceptions=RAISE,
        )

    def signed_in(self, name: str, role: str, *teams: str) -> TestClient:
        browser = self.browser()
        page = browser.get("/ui/sign-in")
        nonce = form_token(page.text)
        answer = browser.post(
            "/ui/sign-in",
            data={"csrf": nonce, "token": self.token(name, role, *teams), "next": "/ui/"},
        )
        assert answer.status_code == 303, answer.text
        return browser


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "no form token on the page"
    return found.group(1)


def publish_required(db: Database) -> None:
    """The example lessons, `derive-pool-size` made mandatory, so the matrix has cells."""
    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    with db.transaction() as session:
        for lesson in found:
            changes: dict[str, object] = {"status": LessonStatus.DRAFT}
            if lesson.id == "derive-pool-size":
                changes["mandate"] = Mandate.REQUIRED
            lessons.add(session, lesson.model_copy(update=changes), utcnow())
            lessons.publish(session, lesson.id, utcnow())


@pytest.fixture
def dash(database_url: str, webhook_secret: str, tmp_path: Path) -> Iterator[Dashboard]:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("organisation.yaml", "team-payments.yaml"):
        shutil.copy(EXAMPLES / name, rules / name)
    with serving(database_url, webhook_secret, prepare=publish_required, rules_path=rules) as (
        client,
        db,
    ):
        body = PR.read_bytes()
        placed = client.post(
            "/hooks/generic", content=body, headers=sign(webhook_secret, "pr-1", body)
        )
        assert placed.status_code == 202, placed.text
        drain(db)
        # No GitHub target is configured here: record the embed as the target stage would.
        with db.transaction() as session:
            for placed in placements.for_work_item(session, PR_REF):
                embedded = {"state": PlacementState.EMBEDDED, "handle": "cairn-1"}
                placements.update(session, placed.model_copy(update=embedded))
        yield Dashboard(client, db, webhook_secret)


# ---- sign-in and sessions ----------------------------------------------------------------


def test_a_page_without_a_session_sends_the_browser_to_sign_in(dash: Dashboard) -> None:
    answer = dash.browser().get("/ui/compliance?from=2026-01-01")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/sign-in?next=%2Fui%2Fcompliance")


def test_signing_in_sets_a_strict_http_only_cookie_holding_no_secret(dash: Dashboard) -> None:
    browser = dash.browser()
    nonce = form_token(browser.get("/ui/sign-in").text)
    secret = dash.token("alice", "reader")
    answer = browser.post("/ui/sign-in", data={"csrf": nonce, "token": secret, "next": "/ui/rules"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/rules"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("cairn_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain HTTP here; Secure is set when the request was HTTPS
    assert secret.split("_", 2)[2] not in cookie
    page = browser.get("/ui/")
    assert page.status_code == 200
    assert "token:alice" in page.text


def test_sign_in_refuses_a_bad_token_and_a_missing_form_nonce(dash: Dashboard) -> None:
    browser = dash.browser()
    nonce = form_token(browser.get("/ui/sign-in").text)
    wrong = "cairn_0123456789abcdef_" + "A" * 43
    refused = browser.post("/ui/sign-in", data={"csrf": nonce, "token": wrong})
    assert refused.status_code == 401
    assert "not valid" in refused.text
    assert "cairn_session" not in refused.headers.get("set-cookie", "")
    stranger = dash.browser()  # never loaded the sign-in page: no nonce cookie
    forged = stranger.post("/ui/sign-in", data={"csrf": nonce, "token": dash.token("bob", "admin")})
    assert forged.status_code == 400
    assert "cairn_session=" not in forged.headers.get("set-cookie", "")


def test_sign_in_only_returns_to_a_dashboard_path(dash: Dashboard) -> None:
    for target in ("https://evil.example/", "//evil.example/ui", "/api/v1/lessons", "/ui\\@x"):
        browser = dash.browser()
        nonce = form_token(browser.get("/ui/sign-in").text)
        answer = browser.post(
            "/ui/sign-in",
            data={"csrf": nonce, "token": dash.token("carol", "reader"), "next": target},
        )
        assert answer.headers["location"] == "/ui/", target


def test_revoking_the_token_ends_its_sessions(dash: Dashboard) -> None:
    browser = dash.signed_in("dave", "reader")
    assert browser.get("/ui/").status_code == 200
    TokenService(dash.db).revoke("dave", cli_principal("tests"))
    answer = browser.get("/ui/")
    assert answer.status_code == 303
    assert "sign-in" in answer.headers["location"]


def test_a_tampered_cookie_is_no_session(dash: Dashboard) -> None:
    value = dash.signed_in("erin", "admin").cookies.get("cairn_session")
    assert value
    jar = dash.browser()
    jar.cookies.set("cairn_session", value[:-3] + "xyz", path="/ui")
    assert jar.get("/ui/").status_code == 303


def test_sign_out_clears_the_session(dash: Dashboard) -> None:
    browser = dash.signed_in("frank", "reader")
    page = browser.get("/ui/")
    answer = browser.post("/ui/sign-out", data={"csrf": form_token(page.text)})
    assert answer.status_code == 303
    assert browser.get("/ui/").status_code == 303


# ---- policies and form tokens -------------------------------------------------------------


def test_every_dashboard_route_declares_a_policy_and_refuses_strangers(dash: Dashboard) -> None:
    ui = [
        r for r in (*ui_pages.router.routes, *ui_oversight.router.routes) if isinstance(r, APIRoute)
    ]
    assert len(ui) >= 15
    stranger = dash.browser()
    for route in ui:
        declared = declared_policy(route)
        assert declared is not None, route.path
        if declared == Access.PUBLIC:
            continue
        path = route.path.replace("{lesson_id}", "derive-pool-size").replace("{ref:path}", "x")
        for method in route.methods:
            answer = stranger.request(
                method, path, data={"csrf": "x"} if method == "POST" else None
            )
            assert answer.status_code in (303, 401), (method, path, answer.status_code)


def test_every_page_sends_a_strict_content_security_policy(dash: Dashboard) -> None:
    browser = dash.signed_in("grace", "admin")
    for path in (
        "/ui/",
        "/ui/lessons",
        "/ui/review",
        "/ui/compliance",
        "/ui/rules",
        "/ui/lessons/derive-pool-size",
        f"/ui/work/{quote(PR_REF)}",
        "/ui/sign-in",
    ):
        answer = browser.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert "<script" not in answer.text  # progressive enhancement: no script at all


def test_a_post_without_the_form_token_is_refused(dash: Dashboard) -> None:
    browser = dash.signed_in("heidi", "admin")
    answer = browser.post("/ui/lessons/ui-draft/publish", data={"confirm": "1"})
    assert answer.status_code == 403
    assert "form token" in answer.text
    other = dash.signed_in("ivan", "admin")
    stolen = form_token(other.get("/ui/").text)
    answer = browser.post("/ui/lessons/ui-draft/publish", data={"csrf": stolen})
    assert answer.status_code == 403
    json_post = browser.post("/ui/lessons/ui-draft/publish", json={"csrf": stolen})
    assert json_post.status_code == 415


def test_a_reader_sees_no_write_button_and_a_forged_post_is_refused(dash: Dashboard) -> None:
    owner = dash.signed_in("pat", "owner", "platform")
    create = dash.client.post(
        "/api/v1/lessons",
        json=DRAFT,
        headers={"Authorization": f"Bearer {dash.token('pat', 'owner', 'platform')}"},
    )
    assert create.status_code == 201, create.text
    submitted = owner.post(
        "/ui/lessons/ui-draft/submit", data={"csrf": form_token(owner.get("/ui/review").text)}
    )
    assert submitted.status_code == 303
    for role in ("reader", "compliance"):
        browser = dash.signed_in(f"{role}-1", role)
        page = browser.get("/ui/review").text
        assert "ui-draft" in page
        for action in ("/approve", "/publish", "/submit", "/edit"):
            assert f"ui-draft{action}" not in page, (role, action)
        forged = browser.post(
            "/ui/lessons/ui-draft/approve",
            data={"csrf": form_token(page), "mandate": "required"},
        )
        assert forged.status_code == 403
        assert "needs the role" in forged.text
    assert (
        "Grant a waiver" in dash.signed_in("compliance-2", "compliance").get("/ui/compliance").text
    )
    assert "Grant a waiver" not in dash.signed_in("reader-2", "reader").get("/ui/compliance").text


def test_review_from_the_page_follows_the_same_rules_as_the_api(dash: Dashboard) -> None:
    secret = dash.token("olga", "owner", "platform")
    created = dash.client.post(
        "/api/v1/lessons", json=DRAFT, headers={"Authorization": f"Bearer {secret}"}
    )
    assert created.status_code == 201
    owner = dash.signed_in("olga", "owner", "platform")
    page = owner.get("/ui/review").text
    assert "/ui/lessons/ui-draft/submit" in page
    owner.post("/ui/lessons/ui-draft/submit", data={"csrf": form_token(page)})
    # The owner who wrote it cannot approve: not a reviewer, and the page offers nothing.
    assert "/approve" not in owner.get("/ui/review").text
    reviewer = dash.signed_in("rita", "reviewer")
    page = reviewer.get("/ui/review").text
    assert "/ui/lessons/ui-draft/approve" in page
    approved = reviewer.post(
        "/ui/lessons/ui-draft/approve",
        data={
            "csrf": form_token(page),
            "mandate": "required",
            "services": "payments-api, ledger-api",
            "teams": "payments",
            "adaptation_notes": "Use the worker count of the deploy.",
            "notes": "applies to every service with a pool",
        },
    )
    assert approved.status_code == 303
    page = reviewer.get("/ui/review").text
    assert "/ui/lessons/ui-draft/publish" in page
    published = reviewer.post("/ui/lessons/ui-draft/publish", data={"csrf": form_token(page)})
    assert published.status_code == 303
    with dash.db.transaction() as session:
        lesson = lessons.get(session, "ui-draft")
    assert lesson is not None
    assert lesson.status.value == "published"
    assert lesson.mandate.value == "required"
    assert lesson.applicability.services == ("payments-api", "ledger-api")
    assert lesson.review is not None and lesson.review.reviewer == "token:rita"
    shown = reviewer.get("/ui/lessons/ui-draft").text
    assert "published" in shown and "Use the worker count of the deploy." in shown


def test_an_admin_who_captured_a_lesson_cannot_approve_it_from_the_page(dash: Dashboard) -> None:
    secret = dash.token("root", "admin")
    headers = {"Authorization": f"Bearer {secret}"}
    assert dash.client.post("/api/v1/lessons", json=DRAFT, headers=headers).status_code == 201
    assert dash.client.post("/api/v1/lessons/ui-draft/submit", headers=headers).status_code == 200
    browser = dash.signed_in("root", "admin")
    page = browser.get("/ui/review").text
    assert "another reviewer approves it" in page
    forged = browser.post(
        "/ui/lessons/ui-draft/approve", data={"csrf": form_token(page), "mandate": "required"}
    )
    assert forged.status_code == 409  # as over the API: the lifecycle refuses it
    assert "approve" in forged.text


# ---- content ---------------------------------------------------------------------------


def test_lesson_text_is_escaped(dash: Dashboard) -> None:
    secret = dash.token("mallory", "owner", "platform")
    hostile = {
        **DRAFT,
        "id": "xss",
        "title": "<script>alert(1)</script>",
        "statement": '"><img src=x onerror=alert(1)>',
    }
    assert (
        dash.client.post(
            "/api/v1/lessons", json=hostile, headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 201
    )
    browser = dash.signed_in("victor", "reader")
    for path in ("/ui/lessons/xss", "/ui/review", "/ui/lessons?status=draft"):
        text = browser.get(path).text
        assert "<script>alert(1)" not in text, path
        assert "<img src=x" not in text, path
        assert "&lt;script&gt;" in text or "&lt;img" in text, path


def test_search_filters_by_facet_and_pages(dash: Dashboard) -> None:
    browser = dash.signed_in("wendy", "reader")
    page = browser.get("/ui/lessons?mandate=required").text
    assert "Filtered by" in page and "mandate: required" in page
    everything = browser.get("/ui/lessons").text
    total = int(re.search(r"(\d+) lessons?</h2>", everything).group(1))  # type: ignore[union-attr]
    required = int(re.search(r"(\d+) lessons?</h2>", page).group(1))  # type: ignore[union-attr]
    assert 0 < required < total
    too_long = browser.get("/ui/lessons?q=" + "x" * 600)
    assert too_long.status_code == 422


def test_the_compliance_download_is_the_cli_csv(dash: Dashboard) -> None:
    browser = dash.signed_in("ciara", "compliance")
    today = utcnow().date()
    start = today - timedelta(days=30)
    answer = browser.get(f"/ui/compliance.csv?from={start}&to={today}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    from router.reports.period import period

    since, until = period(start, today)
    expected = compliance_csv(ComplianceService(dash.db).matrix(Filters(since=since, until=until)))
    assert answer.text == expected
    assert answer.text.splitlines()[0] == "lesson,team,cell,reason,placements,waiver,why"
    assert len(answer.text.splitlines()) > 1


def test_a_compliance_cell_opens_its_evidence_chain(dash: Dashboard) -> None:
    browser = dash.signed_in("ciara", "compliance")
    page = browser.get("/ui/compliance").text
    links = re.findall(r'href="(/ui/compliance/cell\?[^"]+)"', page)
    assert links
    reached = [browser.get(link.replace("&amp;", "&")).text for link in links]
    chains = [text for text in reached if "content hash" in text]
    assert chains, "no cell with a placement behind it"
    assert PR_REF in chains[0] and "rule set" in chains[0] and "Audit log" in chains[0]


def test_the_compliance_matrix_pages_through_its_lessons(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of lessons at a time, in the order of the whole matrix; every lesson on one page
    only; the waiver form still offers every mandated lesson."""
    from router.http.ui import oversight

    found = TypeAdapter(list[Lesson]).validate_json((EXAMPLES / "lessons.json").read_bytes())
    with dash.db.transaction() as session:  # two more mandated lessons, never placed
        for name in ("audit-the-retries", "bound-the-queue"):
            changes = {"id": name, "status": LessonStatus.DRAFT, "mandate": Mandate.REQUIRED}
            lessons.add(session, found[0].model_copy(update=changes), utcnow())
            lessons.publish(session, name, utcnow())
    browser = dash.signed_in("ciara", "compliance")
    whole = ComplianceService(dash.db).matrix(Filters(since=None, until=None))
    everything = browser.get("/ui/compliance?from=2000-01-01").text
    rows = re.findall(r'<th scope="row"><a href="/ui/lessons/[^"]+">([^<]+)</a>', everything)
    assert len(rows) == 3
    monkeypatch.setattr(oversight, "MATRIX_PAGE", 1)
    seen, offset = [], 0
    while True:
        page = browser.get(f"/ui/compliance?from=2000-01-01&offset={offset}").text
        shown = re.findall(r'<th scope="row"><a href="/ui/lessons/[^"]+">([^<]+)</a>', page)
        assert len(shown) == 1
        seen += shown
        assert f"Lessons {offset + 1}\u2013{offset + 1} of {len(rows)}" in page
        options = re.findall(r"<option>([^<]+)</option>", page)
        assert options[: len(rows)] == rows
        if 'rel="next"' not in page:
            break
        offset += 1
    assert seen == rows == whole.lessons
    beyond = browser.get(f"/ui/compliance?from=2000-01-01&offset={len(rows) + 5}").text
    assert f"There are {len(rows)} mandated lessons in this period" in beyond


def test_a_waiver_granted_from_the_page_is_listed(dash: Dashboard) -> None:
    browser = dash.signed_in("ciara", "compliance")
    page = browser.get("/ui/compliance").text
    lesson = re.search(
        r'<select id="w-lesson" name="lesson" required><option>([^<]+)</option>', page
    )
    assert lesson is not None
    answer = browser.post(
        "/ui/waivers",
        data={
            "csrf": form_token(page),
            "lesson": lesson.group(1),
            "team": "payments",
            "reason": "legacy service, retired in Q1",
            "expires": "30d",
        },
    )
    assert answer.status_code == 303, answer.text
    assert "legacy service, retired in Q1" in browser.get("/ui/compliance").text
    bad = browser.post(
        "/ui/waivers",
        data={
            "csrf": form_token(page),
            "lesson": lesson.group(1),
            "team": "payments",
            "reason": "x",
            "expires": "forever",
        },
    )
    assert bad.status_code == 422


def test_bad_periods_and_ids_are_pages_not_server_errors(dash: Dashboard) -> None:
    browser = dash.signed_in("nina", "admin")
    cases = {
        "/ui/compliance?from=2026-12-01&to=2026-01-01": 422,
        "/ui/compliance?to=0001-01-02": 200,
        "/ui/compliance?from=notadate": 422,
        "/ui/lessons/does-not-exist": 404,
        "/ui/lessons/derive-pool-size?a=0": 422,
        "/ui/?weeks=1000": 422,
        "/ui/static/../settings.py": 404,
        "/ui/static/nothing.css": 404,
    }
    for path, status in cases.items():
        answer = browser.get(path)
        assert answer.status_code == status, (path, answer.status_code, answer.text[:200])


def test_backtest_from_the_page(dash: Dashboard) -> None:
    browser = dash.signed_in("paul", "platform")
    page = browser.get("/ui/rules").text
    assert "Run backtest" in page
    draft = (EXAMPLES / "organisation.yaml").read_text()
    answer = browser.post(
        "/ui/rules/backtest",
        data={"csrf": form_token(page), "since": "30d"},
        files={"files": ("organisation.yaml", draft.encode(), "application/yaml")},
    )
    assert answer.status_code == 200, answer.text[:500]
    assert "work-item events" in answer.text
    broken = browser.post(
        "/ui/rules/backtest",
        data={"csrf": form_token(page), "pasted": "pack: [unclosed", "since": "30d"},
    )
    assert broken.status_code == 422
    assert "pasted.yaml:" in broken.text
    reader = dash.signed_in("rhea", "reader")
    assert "Run backtest" not in reader.get("/ui/rules").text


def test_the_work_item_page_lists_its_lessons(dash: Dashboard) -> None:
    browser = dash.signed_in("tom", "reader")
    page = browser.get(f"/ui/work/{quote(PR_REF)}")
    assert page.status_code == 200
    assert "/ui/lessons/" in page.text
    assert "No lesson was placed" in browser.get("/ui/work/github:acme/none%2399").text


def test_a_bearer_token_reads_pages_without_a_form_token(dash: Dashboard) -> None:
    answer = dash.client.get("/ui/compliance")
    assert answer.status_code == 200


def test_static_files_are_served_by_cairn(dash: Dashboard) -> None:
    css = dash.browser().get("/ui/static/cairn.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"


def test_a_bad_query_parameter_is_a_page(dash: Dashboard) -> None:
    browser = dash.signed_in("quinn", "reader")
    answer = browser.get("/ui/?weeks=lots")
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert "weeks" in answer.text
    api = dash.client.get("/api/v1/placements?limit=lots")
    assert api.status_code == 422
    assert api.headers["content-type"].startswith("application/json")


def test_a_typed_body_holding_text_that_does_not_encode_is_a_422(dash: Dashboard) -> None:
    body = b'{"lesson": "\\ud800", "team": 5, "reason": "x"}'
    answer = dash.client.post(
        "/api/v1/waivers", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["status"] == "rejected"
    assert "team" in answer.json()["reason"]


def test_the_lesson_page_pages_its_placements_and_counts_them_all(dash: Dashboard) -> None:
    from core.adoption import Tier

    browser = dash.signed_in("lena", "reader")
    page = browser.get("/ui/lessons/derive-pool-size").text
    assert "Placements (1)" in page
    assert Tier.DELIVERED.value in page
    beyond = browser.get("/ui/lessons/derive-pool-size?offset=50").text
    assert "Placements (1)" in beyond and "Newer" in beyond
    rules = browser.get("/ui/rules").text
    assert "team-payments/pool-sizing-is-required-here" in rules


def test_the_overview_trend_counts_what_the_adoption_report_counts(dash: Dashboard) -> None:
    from core.adoption import Tier
    from router.reports.adoption import GroupBy, ReportService

    reports = ReportService(dash.db)
    weekly = reports.weekly(Filters())
    total = reports.report(GroupBy.TEAM, Filters()).total.as_dict()
    expected: dict[str, dict[str, int]] = total["weeks"]  # type: ignore[assignment]
    done = (Tier.ACKNOWLEDGED.value, Tier.VERIFIED.value)
    assert expected
    for week, counts in expected.items():
        tiers = weekly[week]
        assert sum(tiers.values()) == counts.get("placed", 0)
        assert sum(tiers.get(t, 0) for t in done) == counts.get("acknowledged", 0)
        assert tiers.get(Tier.VERIFIED.value, 0) == counts.get("verified", 0)
    page = dash.signed_in("otto", "reader").get("/ui/?weeks=4").text
    assert f"<dt>Reached</dt><dd>{total['reach']}</dd>" in page
