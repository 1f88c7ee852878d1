"""Access control over the real app: every route in the OpenAPI document × every role, tokens,
the SSO proxy mode, what the server decides rather than the client, and the failure limiter."""

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core.access import Role
from core.base import utcnow
from router.access.operator import cli_principal
from router.access.tokens import TokenService
from router.compose import build_runtime
from router.http.app import create_app
from router.http.guard import POLICY_KEY, FailureLimiter
from router.settings import Settings
from store import audit, migrate
from store.engine import Database
from store.tables import ApiTokenRow
from tests.connectors.canvas.test_jwt import KID, SIGNING, jwks
from tests.router.support import DRAFT, bearer

# The policy table: (method, path) → who may call it. A route missing here fails the suite.
EVERYONE = frozenset(Role)
PUBLIC, SIGNED, METRICS, ANY = "public", "signed", "metrics", "authenticated"
READ = EVERYONE
AUTHOR = frozenset({Role.ADMIN, Role.OWNER})
REVIEW = frozenset({Role.ADMIN, Role.REVIEWER})
OPERATE = frozenset({Role.ADMIN, Role.PLATFORM})
ADMIN = frozenset({Role.ADMIN})
EXPECTED: dict[tuple[str, str], str | frozenset[Role]] = {
    ("POST", "/hooks/{source}"): SIGNED,
    ("POST", "/hooks/xapi"): SIGNED,
    ("POST", "/hooks/canvas"): SIGNED,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): METRICS,
    ("GET", "/api/v1/me"): ANY,
    ("GET", "/api/v1/rules"): READ,
    ("POST", "/api/v1/rules/validate"): OPERATE,
    ("GET", "/api/v1/placements"): READ,
    ("GET", "/api/v1/placements/{placement_id}"): READ,
    ("GET", "/api/v1/placements/{placement_id}/signals"): READ,
    ("GET", "/api/v1/reports/adoption"): READ,
    ("GET", "/api/v1/reports/compliance"): READ,
    ("GET", "/api/v1/reports/compliance/evidence"): READ,
    ("GET", "/api/v1/reports/overdue"): READ,
    ("GET", "/api/v1/waivers"): READ,
    ("GET", "/api/v1/feedback"): READ,
    ("GET", "/api/v1/flags"): READ,
    ("POST", "/api/v1/flags/evaluate"): OPERATE,
    ("POST", "/api/v1/flags/{kind}/{subject}/clear"): OPERATE,
    ("POST", "/api/v1/waivers"): frozenset({Role.ADMIN, Role.COMPLIANCE}),
    ("GET", "/api/v1/lessons/schema"): READ,
    ("GET", "/api/v1/lessons/export"): READ,
    ("POST", "/api/v1/lessons/import"): ADMIN,
    ("POST", "/api/v1/lessons"): AUTHOR,
    ("GET", "/api/v1/lessons"): READ,
    ("GET", "/api/v1/lessons/{lesson_id}"): READ,
    ("PATCH", "/api/v1/lessons/{lesson_id}"): AUTHOR,
    ("GET", "/api/v1/lessons/{lesson_id}/recurrences"): READ,
    ("GET", "/api/v1/lessons/{lesson_id}/versions/{version}"): READ,
    ("POST", "/api/v1/lessons/{lesson_id}/submit"): AUTHOR,
    ("POST", "/api/v1/lessons/{lesson_id}/approve"): REVIEW,
    ("POST", "/api/v1/lessons/{lesson_id}/publish"): REVIEW,
    ("POST", "/api/v1/lessons/{lesson_id}/revise"): AUTHOR,
    ("POST", "/api/v1/lessons/{lesson_id}/retire"): AUTHOR,
    ("GET", "/api/v1/lessons/{lesson_id}/findings"): READ,
    ("POST", "/api/v1/lessons/{lesson_id}/findings/{finding_id}/redact"): REVIEW,
    ("POST", "/api/v1/lessons/{lesson_id}/findings/{finding_id}/keep"): REVIEW,
    ("GET", "/api/v1/lessons/{lesson_id}/restricted"): AUTHOR,
    ("GET", "/api/v1/queue"): OPERATE,
    ("POST", "/api/v1/queue/retry-dead"): OPERATE,
    ("GET", "/api/v1/teams"): READ,
    ("GET", "/api/v1/teams/{team}"): READ,
    ("PUT", "/api/v1/teams/{team}"): OPERATE,
    ("POST", "/api/v1/teams/import"): OPERATE,
}
IDENTITIES = ("none", "expired", "revoked", *(role.value for role in Role))
PATH_VALUES = {
    "{source}": "generic",
    "{lesson_id}": "probe",
    "{version}": "1",
    "{placement_id}": "pl_probe",
    "{kind}": "rule",
    "{subject}": "org/probe",
    "{team}": "payments",
    "{finding_id}": "person-0123456789ab",
}
QUERIES = {
    "/api/v1/placements": {"work_item": "github:acme/api#1"},
    "/api/v1/reports/compliance/evidence": {"lesson": "probe", "team": "payments"},
    "/api/v1/reports/overdue": {"owner": "payments"},
}
OWNER_TEAM = "payments"


class Probe:
    """One running app with a token per role, an expired and a revoked token."""

    def __init__(self, client: TestClient, db: Database, headers: dict[str, dict[str, str]]):
        self.client = client
        self.db = db
        self.headers = headers


def _token_row_update(db: Database, name: str, **values: object) -> None:
    with db.transaction() as session:
        row = session.query(ApiTokenRow).filter_by(name=name).one()
        for key, value in values.items():
            setattr(row, key, value)


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    url = f"sqlite:///{tmp_path_factory.mktemp('access') / 'cairn.db'}"
    db = Database(url)
    migrate.upgrade(db)
    headers: dict[str, dict[str, str]] = {"none": {}}
    for role in Role:
        teams = (OWNER_TEAM,) if role == Role.OWNER else ()
        headers[role.value] = bearer(db, f"probe-{role.value}", role.value, *teams)
    headers["expired"] = bearer(db, "probe-expired", "admin")
    _token_row_update(db, "probe-expired", expires_at=utcnow() - timedelta(seconds=1))
    headers["revoked"] = bearer(db, "probe-revoked", "admin")
    TokenService(db).revoke("probe-revoked", cli_principal())
    settings = Settings(
        database_url=SecretStr(url),
        generic_webhook_secret=SecretStr("whsec_" + "a" * 32),
        xapi_push_secret=SecretStr("xapi-push-secret-" + "b" * 32),
        canvas_live_events_jwks=json.dumps(jwks((KID, SIGNING))),
        poll_interval=0.05,
        auth_failures_per_minute=10_000,
    )
    with TestClient(create_app(build_runtime(settings))) as client:
        created = client.post(
            "/api/v1/lessons",
            json={**DRAFT, "id": "probe", "owner": OWNER_TEAM},
            headers=headers["owner"],
        )
        assert created.status_code == 201, created.text
        yield Probe(client, db, headers)
    db.dispose()


def test_every_route_in_the_openapi_document_is_in_the_policy_table(probe: Probe) -> None:
    document = probe.client.get("/openapi.json").json()
    declared = {
        (method.upper(), path): operation.get(POLICY_KEY)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    assert set(declared) == set(EXPECTED), "a route was added or removed: extend EXPECTED"
    undeclared = [route for route, value in declared.items() if value is None]
    assert undeclared == []


def _request(probe: Probe, method: str, path: str, who: str) -> tuple[int, dict[str, str], str]:
    concrete = path
    for placeholder, value in PATH_VALUES.items():
        concrete = concrete.replace(placeholder, value)
    body = {} if method in ("POST", "PATCH") else None
    response = probe.client.request(
        method,
        concrete,
        params=QUERIES.get(path),
        json=body,
        headers=probe.headers[who],
    )
    return response.status_code, dict(response.headers), response.text


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_route_by_role(probe: Probe, method: str, path: str, who: str) -> None:
    status, headers, text = _request(probe, method, path, who)
    assert status < 500, text
    allowed = EXPECTED[(method, path)]
    if allowed in (PUBLIC, METRICS):  # /metrics is open while CAIRN_METRICS_TOKEN is unset
        assert status not in (401, 403), text
    elif allowed == SIGNED:
        assert status == 401 and "signature" in text  # no signature: the token plays no part
    elif who in ("none", "expired", "revoked"):
        assert status == 401, text
        assert headers["www-authenticate"] == 'Bearer realm="cairn"'
    elif allowed == ANY or Role(who) in allowed:
        assert status not in (401, 403), text
    else:
        assert status == 403, text
        assert "needs the role" in json.loads(text)["reason"]


def test_bad_credentials_get_one_answer_and_no_hint(probe: Probe) -> None:
    answers = set()
    for header in (
        "Bearer cairn_0123456789abcdef_" + "x" * 43,  # well-formed, unknown
        "Bearer not-a-token",
        probe.headers["expired"]["Authorization"],
        probe.headers["revoked"]["Authorization"],
    ):
        response = probe.client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401
        answers.add(response.json()["reason"])
    assert answers == {"invalid, expired or revoked token"}
    basic = probe.client.get("/api/v1/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401 and "Bearer" in basic.json()["reason"]


def test_a_token_in_a_cookie_is_not_a_credential(probe: Probe) -> None:
    token = probe.headers["admin"]["Authorization"].removeprefix("Bearer ")
    probe.client.cookies.set("Authorization", token)
    probe.client.cookies.set("token", token)
    try:
        assert probe.client.get("/api/v1/me").status_code == 401
    finally:
        probe.client.cookies.clear()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"title": "x"}'),
        ("application/x-www-form-urlencoded", b"title=x"),
        ("multipart/form-data; boundary=b", b"--b--"),
    ],
)
def test_cross_site_body_types_are_refused(probe: Probe, content_type: str, body: bytes) -> None:
    response = probe.client.post(
        "/api/v1/lessons",
        content=body,
        headers={**probe.headers["owner"], "Content-Type": content_type},
    )
    assert response.status_code == 415
    assert "application/json" in response.json()["reason"]


def test_me_names_the_principal_the_server_authenticated(probe: Probe) -> None:
    me = probe.client.get("/api/v1/me", headers=probe.headers["owner"]).json()
    assert me == {
        "id": "token:probe-owner",
        "roles": ["owner"],
        "teams": [OWNER_TEAM],
        "permissions": ["author", "read"],
    }


def test_tokens_record_their_last_use(probe: Probe) -> None:
    probe.client.get("/api/v1/me", headers=probe.headers["reader"])
    [reader] = [t for t in TokenService(probe.db).list() if t.name == "probe-reader"]
    assert reader.last_used_at is not None


# --- what the server decides, not the client ----------------------------------------------------


@pytest.fixture
def app(database_url: str) -> Iterator[tuple[TestClient, Database, dict[str, dict[str, str]]]]:
    db = Database(database_url)
    migrate.upgrade(db)
    people = {
        "dana": bearer(db, "dana", "owner", "platform"),
        "olga": bearer(db, "olga", "owner", "ledger"),
        "lee": bearer(db, "lee", "reviewer"),
        "root": bearer(db, "root", "admin"),
    }
    settings = Settings(database_url=SecretStr(database_url), poll_interval=0.05)
    with TestClient(create_app(build_runtime(settings))) as client:
        yield client, db, people
    db.dispose()


def test_a_header_or_body_cannot_claim_to_be_someone_else(
    app: tuple[TestClient, Database, dict[str, dict[str, str]]],
) -> None:
    client, db, people = app
    claimed = {**DRAFT, "provenance": {**DRAFT["provenance"], "captured_by": "lee"}}
    created = client.post(
        "/api/v1/lessons", json=claimed, headers={**people["dana"], "X-Cairn-Actor": "lee"}
    )
    assert created.json()["provenance"]["captured_by"] == "token:dana"
    # PATCH can change provenance's evidence but not who captured it, nor when.
    captured_at = created.json()["provenance"]["captured_at"]
    edited = client.patch(
        "/api/v1/lessons/derive-pool-size",
        json={"provenance": {"captured_by": "token:lee", "captured_at": "2020-01-01T00:00:00Z"}},
        headers=people["dana"],
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["provenance"]["captured_by"] == "token:dana"
    assert edited.json()["provenance"]["captured_at"] == captured_at
    with db.transaction() as session:
        actors = {e.actor for e in audit.entries(session, subject="derive-pool-size")}
    assert actors == {"token:dana"}


def test_nobody_approves_a_lesson_they_captured_even_as_admin(
    app: tuple[TestClient, Database, dict[str, dict[str, str]]],
) -> None:
    client, _, people = app
    client.post("/api/v1/lessons", json=DRAFT, headers=people["root"])
    client.post("/api/v1/lessons/derive-pool-size/submit", headers=people["root"])
    refused = client.post("/api/v1/lessons/derive-pool-size/approve", headers=people["root"])
    assert refused.status_code == 409 and "cannot also approve" in refused.json()["reason"]
    approved = client.post("/api/v1/lessons/derive-pool-size/approve", headers=people["lee"])
    assert approved.status_code == 200
    assert approved.json()["review"]["reviewer"] == "token:lee"


def test_owners_act_only_on_their_teams_lessons(
    app: tuple[TestClient, Database, dict[str, dict[str, str]]],
) -> None:
    client, _, people = app
    other_team = client.post("/api/v1/lessons", json=DRAFT, headers=people["olga"])
    assert other_team.status_code == 403 and "team 'platform'" in other_team.json()["reason"]
    assert client.post("/api/v1/lessons", json=DRAFT, headers=people["dana"]).status_code == 201
    for method, path, body in (
        ("PATCH", "/api/v1/lessons/derive-pool-size", {"title": "Mine now"}),
        ("POST", "/api/v1/lessons/derive-pool-size/submit", None),
        ("POST", "/api/v1/lessons/derive-pool-size/retire", None),
    ):
        response = client.request(method, path, json=body, headers=people["olga"])
        assert response.status_code == 403, (path, response.text)
    # Nor can an owner hand its lesson to a team it does not belong to.
    moved = client.patch(
        "/api/v1/lessons/derive-pool-size", json={"owner": "ledger"}, headers=people["dana"]
    )
    assert moved.status_code == 403
    shown = client.get("/api/v1/lessons/derive-pool-size", headers=people["olga"]).json()
    assert (shown["owner"], shown["title"]) == ("platform", DRAFT["title"])


def _export_file(status: str, review: dict[str, str] | None) -> bytes:
    entry = {
        **DRAFT,
        "id": "imported",
        "version": 3,
        "status": status,
        "review": review,
        "provenance": {**DRAFT["provenance"], "captured_by": "dana"},
    }
    return json.dumps({"format": "cairn.lessons/1", "lessons": [entry]}).encode()


def test_import_is_for_admins_and_unreviewed_versions_arrive_as_drafts(
    app: tuple[TestClient, Database, dict[str, dict[str, str]]],
) -> None:
    client, db, people = app
    json_type = {"Content-Type": "application/json"}
    unreviewed = _export_file("published", None)
    for who in ("dana", "lee"):
        refused = client.post(
            "/api/v1/lessons/import", content=unreviewed, headers={**people[who], **json_type}
        )
        assert refused.status_code == 403
    imported = client.post(
        "/api/v1/lessons/import", content=unreviewed, headers={**people["root"], **json_type}
    )
    assert imported.status_code == 200, imported.text
    shown = client.get("/api/v1/lessons/imported", headers=people["root"]).json()
    assert (shown["status"], shown["published_versions"]) == ("draft", [])

    reviewed = _export_file(
        "published", {"reviewer": "rita", "reviewed_at": "2026-11-01T00:00:00Z", "notes": ""}
    )
    trusted = client.post(
        "/api/v1/lessons/import",
        params={"trust_reviews": "true"},
        content=reviewed.replace(b'"imported"', b'"imported-2"'),
        headers={**people["root"], **json_type},
    )
    assert trusted.status_code == 200, trusted.text
    with db.transaction() as session:
        [first] = audit.entries(session, action="lesson.imported", subject="imported")
        [second] = audit.entries(session, action="lesson.imported", subject="imported-2")
    assert (first.actor, first.details["status"], first.details["reviewed_by"]) == (
        "token:root",
        "draft",
        None,
    )
    assert (second.actor, second.details["reviewed_by"], second.details["trusted_reviews"]) == (
        "token:root",
        "rita",
        True,
    )


# --- limits, the scrape token, the proxy ----------------------------------------------------------


def _client(database_url: str, **settings: object) -> tuple[TestClient, Database]:
    db = Database(database_url)
    migrate.upgrade(db)
    config = Settings(database_url=SecretStr(database_url), poll_interval=0.05, **settings)
    return TestClient(create_app(build_runtime(config))), db


def test_repeated_bad_credentials_are_slowed_down(sqlite_url: str) -> None:
    client, db = _client(sqlite_url, auth_failures_per_minute=3)
    good = bearer(db, "good", "reader")
    with client:
        assert client.get("/api/v1/me").status_code == 401  # no credentials: not a guess
        for _ in range(3):
            bad = client.get("/api/v1/me", headers={"Authorization": "Bearer guess"})
            assert bad.status_code == 401
        limited = client.get("/api/v1/me", headers={"Authorization": "Bearer guess"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        # The client is slowed down as a whole, so a guesser cannot test a hit meanwhile.
        assert client.get("/api/v1/me", headers=good).status_code == 429
        assert client.get("/healthz").status_code == 200
    db.dispose()


def test_failure_limiter_windows_and_memory_bound() -> None:
    limiter = FailureLimiter(2, clients=100)
    limiter.failed("a", now=0.0)
    assert limiter.retry_after("a", now=1.0) is None
    limiter.failed("a", now=1.0)
    assert limiter.retry_after("a", now=2.0) == 59
    assert limiter.retry_after("a", now=60.0) is None  # a new window
    for n in range(1_000):
        limiter.failed(f"client-{n}", now=3.0)
    assert len(limiter._windows) == 100


def test_metrics_asks_for_its_scrape_token_when_one_is_set(sqlite_url: str) -> None:
    client, db = _client(sqlite_url, metrics_token=SecretStr("scrape-" + "s" * 24))
    with client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        token = {"Authorization": "Bearer scrape-" + "s" * 24}
        assert client.get("/metrics", headers=token).status_code == 200
        # The scrape token opens /metrics only.
        assert client.get("/api/v1/me", headers=token).status_code == 401
    db.dispose()


PROXY_SECRET = "p" * 40
PROXY = {
    "trusted_user_header": "X-Forwarded-User",
    "trusted_proxy_secret": SecretStr(PROXY_SECRET),
    "group_roles": {"sre-leads": "reviewer", "pay-devs": "owner:payments", "audit": "compliance"},
}


def _as(user: str, groups: str = "", secret: str | None = PROXY_SECRET) -> dict[str, bytes]:
    headers = {"X-Forwarded-User": user.encode(), "X-Forwarded-Groups": groups.encode()}
    if secret is not None:
        headers["X-Cairn-Proxy-Secret"] = secret.encode()
    return headers


def test_proxy_mode_maps_groups_to_roles_and_cannot_be_forged(sqlite_url: str) -> None:
    client, db = _client(sqlite_url, **PROXY)
    with client:
        me = client.get("/api/v1/me", headers=_as("Mallory", "pay-devs, audit, unknown"))
        assert me.status_code == 200, me.text
        assert me.json()["id"] == "user:mallory"
        assert (me.json()["roles"], me.json()["teams"]) == (["compliance", "owner"], ["payments"])
        # Case and width do not make another person; invisible characters are refused.
        wide = client.get(
            "/api/v1/me", headers=_as("\uff2d\uff21\uff2c\uff2c\uff2f\uff32\uff39", "audit")
        )
        assert wide.json()["id"] == "user:mallory"
        hidden = client.get("/api/v1/me", headers=_as("mal\u200blory", "audit"))
        assert hidden.status_code == 401
        # Without the proxy's secret, or with a wrong one, the headers prove nothing.
        assert client.get("/api/v1/me", headers=_as("root", "sre-leads", None)).status_code == 401
        forged = client.get("/api/v1/me", headers=_as("root", "sre-leads", "p" * 39 + "q"))
        assert forged.status_code == 401
        # A person in no mapped group is known but may do nothing.
        nobody = client.get("/api/v1/lessons", headers=_as("guest"))
        assert nobody.status_code == 403
        # Bearer tokens keep working beside the proxy (machines, scripts).
        assert client.get("/api/v1/me", headers=bearer(db, "ci", "reader")).status_code == 200
    db.dispose()


def test_proxy_mode_refuses_to_start_without_a_strong_secret() -> None:
    with pytest.raises(ValueError, match="CAIRN_TRUSTED_PROXY_SECRET"):
        Settings(trusted_user_header="X-Forwarded-User")
    with pytest.raises(ValueError, match="CAIRN_TRUSTED_PROXY_SECRET"):
        Settings(trusted_user_header="X-Forwarded-User", trusted_proxy_secret=SecretStr("short"))
    with pytest.raises(ValueError, match="CAIRN_GROUP_ROLES"):
        Settings(group_roles={"devs": "owner"})  # an owner grant needs its team


def test_token_values_never_reach_logs_or_reprs(
    probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    created = TokenService(probe.db).create("secretive", Role.READER, (), None, cli_principal())
    assert created.secret not in repr(created) and "secret=***" in repr(created)
    caplog.set_level(logging.DEBUG)
    presented = created.secret[:-1] + ("A" if created.secret[-1] != "A" else "B")
    for token in (created.secret, presented):
        probe.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    metrics = probe.client.get("/metrics").text
    for token in (created.secret, presented):
        assert token not in caplog.text
        assert token not in metrics
    with probe.db.transaction() as session:
        stored = session.query(ApiTokenRow).filter_by(name="secretive").one()
        assert created.secret not in (stored.secret_hash, stored.id, stored.name)


def test_openapi_and_docs_stay_readable(probe: Probe) -> None:
    assert probe.client.get("/openapi.json").status_code == 200
    assert probe.client.get("/docs").status_code == 200


# --- regressions found by trying to break it ------------------------------------------------


def test_nobody_approves_a_version_they_wrote_by_revising_or_editing(
    app: tuple[TestClient, Database, dict[str, dict[str, str]]],
) -> None:
    client, _, people = app
    assert client.post("/api/v1/lessons", json=DRAFT, headers=people["dana"]).status_code == 201
    for step, who in (("submit", "dana"), ("approve", "lee"), ("publish", "lee")):
        done = client.post(f"/api/v1/lessons/derive-pool-size/{step}", headers=people[who])
        assert done.status_code == 200, done.text
    # root (admin: both owner and reviewer rights) opens version 2, rewrites it, submits it.
    root = people["root"]
    client.post("/api/v1/lessons/derive-pool-size/revise", headers=root)
    client.patch("/api/v1/lessons/derive-pool-size", json={"statement": "Mine."}, headers=root)
    client.post("/api/v1/lessons/derive-pool-size/submit", headers=root)
    own = client.post("/api/v1/lessons/derive-pool-size/approve", headers=root)
    assert own.status_code == 409 and "wrote this version" in own.json()["reason"]
    # Dana's edit in review withdraws nothing yet (no approval) but makes her an author too.
    client.patch("/api/v1/lessons/derive-pool-size", json={"title": "T2"}, headers=people["dana"])
    lee = client.post("/api/v1/lessons/derive-pool-size/approve", headers=people["lee"])
    assert lee.status_code == 200 and lee.json()["authors"] == ["token:root", "token:dana"]
    again = client.post("/api/v1/lessons/derive-pool-size/approve", headers=people["root"])
    assert again.status_code == 409  # root wrote it; and it is already approved


def test_bodies_over_the_ceiling_are_refused_before_anything_reads_them(sqlite_url: str) -> None:
    client, db = _client(sqlite_url, max_api_body_bytes=4096, max_body_bytes=1024)
    with client:
        big = b"[" + b"1," * 5000 + b"1]"
        declared = client.post(
            "/api/v1/lessons", content=big, headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413 and "4096 bytes" in declared.json()["reason"]

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b" " * 1000

        streamed = client.post(
            "/api/v1/lessons", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert client.get("/healthz").status_code == 200
    db.dispose()


def test_racing_bad_credentials_cannot_slip_under_the_limit(sqlite_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client, db = _client(sqlite_url, auth_failures_per_minute=5)
    bad = {"Authorization": "Bearer cairn_0000000000000000_" + "A" * 43}
    with client, ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(
            pool.map(lambda _: client.get("/api/v1/me", headers=bad).status_code, range(64))
        )
    assert answers.count(401) <= 5 and answers.count(429) >= 59
    db.dispose()


def test_odd_numbers_and_dates_are_answered_without_a_server_error(probe: Probe) -> None:
    reader = probe.headers["reader"]
    huge = probe.client.get("/api/v1/lessons/probe/versions/9223372036854775808", headers=reader)
    assert huge.status_code == 422
    for path in ("/api/v1/placements", "/api/v1/reports/adoption", "/api/v1/reports/compliance"):
        assert (
            probe.client.get(path, params={"to": "9999-12-31"}, headers=reader).status_code == 200
        )
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = probe.client.post(
        "/api/v1/lessons/import",
        content=deep,
        headers={**probe.headers["admin"], "Content-Type": "application/json"},
    )
    assert nested.status_code == 422 and "nested too deeply" in nested.json()["reason"]
    for huge in (b'[{"version": ' + b"9" * 5000 + b"}]", b"- version: " + b"9" * 5000 + b"\n"):
        kind = "application/json" if huge.startswith(b"[") else "application/yaml"
        long_number = probe.client.post(
            "/api/v1/lessons/import",
            content=huge,
            headers={**probe.headers["admin"], "Content-Type": kind},
        )
        assert long_number.status_code == 422, long_number.text
        assert "digit" in long_number.json()["reason"]


def test_proxy_identity_cannot_be_doubled_hidden_or_used_cross_site(sqlite_url: str) -> None:
    client, db = _client(sqlite_url, **PROXY)
    with client:
        doubled = client.get(
            "/api/v1/me",
            headers=[
                ("X-Forwarded-User", "mallory"),
                ("X-Forwarded-User", "alice"),
                ("X-Cairn-Proxy-Secret", PROXY_SECRET),
            ],
        )
        assert doubled.status_code == 401 and "once" in doubled.json()["reason"]
        for blank in ("alice\u3164", "alice\u2800", "ali\u034fce"):
            assert client.get("/api/v1/me", headers=_as(blank, "audit")).status_code == 401
        # A bodiless POST as a proxied person needs a JSON content type (no cross-site form).
        bare = client.post("/api/v1/queue/retry-dead", headers=_as("carol", "sre-leads"))
        assert bare.status_code in (403, 415)
        owner = _as("bob", "pay-devs")
        client.post(
            "/api/v1/lessons",
            json={**DRAFT, "owner": "payments"},
            headers=owner,
        )
        submit = client.post("/api/v1/lessons/derive-pool-size/submit", headers=owner)
        assert submit.status_code == 415
        typed = client.post(
            "/api/v1/lessons/derive-pool-size/submit",
            headers={**owner, "Content-Type": b"application/json"},
        )
        assert typed.status_code == 200, typed.text
    db.dispose()


def test_an_imported_approval_is_not_trusted_unless_the_admin_says_so(
    app: tuple[TestClient, Database, dict[str, dict[str, str]]],
) -> None:
    client, _, people = app
    review = {"reviewer": "rita", "reviewed_at": "2026-11-01T00:00:00Z", "notes": ""}
    body = _export_file("in_review", review)
    done = client.post(
        "/api/v1/lessons/import",
        content=body,
        headers={**people["root"], "Content-Type": "application/json"},
    )
    assert done.status_code == 200, done.text
    shown = client.get("/api/v1/lessons/imported", headers=people["lee"]).json()
    assert (shown["status"], shown["review"]) == ("in_review", None)
    publish = client.post("/api/v1/lessons/imported/publish", headers=people["lee"])
    assert publish.status_code == 409 and "not been approved" in publish.json()["reason"]


def test_platform_validates_draft_packs_over_the_api(probe: Probe) -> None:
    examples = Path(__file__).resolve().parents[3] / "rules" / "examples"
    files = {p.name: p.read_text() for p in sorted(examples.glob("*.yaml"))}
    platform = probe.headers["platform"]
    ok = probe.client.post("/api/v1/rules/validate", json={"files": files}, headers=platform)
    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert ok.json()["packs"] == ["organisation", "team-payments", "training"]
    broken = {"org.yaml": "pack: org\nrules:\n  - id: x\n    then: {form: nope}\n"}
    bad = probe.client.post("/api/v1/rules/validate", json={"files": broken}, headers=platform)
    assert bad.json()["ok"] is False and bad.json()["errors"][0].startswith("org.yaml:")
    deep = {"deep.yaml": "[" * 5000 + "]" * 5000}
    nested = probe.client.post("/api/v1/rules/validate", json={"files": deep}, headers=platform)
    assert nested.status_code == 200 and nested.json()["ok"] is False
