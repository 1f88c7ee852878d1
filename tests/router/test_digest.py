"""Owners' overdue digests: the content (exactly), the API, the CLI, and the signed webhook push
with retries against a real HTTP receiver on loopback, on SQLite and PostgreSQL."""

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr, ValidationError
from standardwebhooks.webhooks import Webhook

from connectors.fake_http import serve
from connectors.retrying import RetryPolicy
from connectors.webhook_sender import WebhookSender
from core.errors import ConfigurationError
from core.lesson import Mandate
from core.overdue import OverdueDigest, OverdueItem
from core.placement import EmbeddingForm, Placement, PlacementState
from core.work import System, WorkItem
from router.cli import main
from router.overdue import DIGEST_TYPE, Digests, OverdueSweeper, digest, push_digests
from router.settings import Settings
from store import audit, placements, work_items
from store.engine import Database
from tests.router.support import publish_examples, serving

# The API and the CLI judge by the clock: the seeded times are relative to it, whole seconds.
NOW = datetime.now(UTC).replace(microsecond=0)
POOL, CSS = "derive-pool-size", "cache-bust-css"
POOL_TITLE = "Derive the database pool size from the worker count"
CSS_TITLE = "Fingerprint static assets"
PR_URL = "https://github.com/acme/api/pull/7"
JIRA_URL = "https://example.atlassian.net/browse/PAY-9"
INTERVAL = timedelta(hours=24)


def _placement(
    pid: str,
    lesson: str,
    ref: str,
    state: PlacementState,
    due: timedelta,
    *,
    mandate: Mandate = Mandate.REQUIRED,
    reminded_at: datetime | None = None,
) -> Placement:
    form = (
        EmbeddingForm.JIRA_CHECKLIST
        if ref.startswith("jira:")
        else EmbeddingForm.GITHUB_PR_CHECKLIST
    )
    return Placement(
        id=pid,
        lesson_id=lesson,
        lesson_version=1,
        work_item_ref=ref,
        rule_id="r",
        rule_set_version="v",
        form=form,
        mandate=mandate,
        due_at=NOW + due,
        state=state,
        handle=f"h-{pid}",
        reminded_at=reminded_at,
        reminders=0 if reminded_at is None else 1,
        created_at=NOW - timedelta(days=10),
        updated_at=NOW - timedelta(days=4),
    )


SEEDED = [
    _placement(
        "p-reminded",
        POOL,
        "github:acme/api#7",
        PlacementState.OVERDUE,
        -timedelta(days=3, hours=1),
        reminded_at=NOW - timedelta(days=2),
    ),
    _placement(
        "p-overdue",
        POOL,
        "jira:PAY-9",
        PlacementState.OVERDUE,
        -timedelta(days=1, hours=12),
        mandate=Mandate.REVIEW_AND_JUSTIFY,
    ),
    _placement(
        "p-unswept", POOL, "github:acme/web#3", PlacementState.EMBEDDED, -timedelta(hours=5)
    ),
    _placement(
        "p-invited",
        POOL,
        "github:acme/api#8",
        PlacementState.EMBEDDED,
        -timedelta(days=2),
        mandate=Mandate.INVITED,
    ),
    _placement("p-done", POOL, "github:acme/api#9", PlacementState.COMPLETED, -timedelta(days=2)),
    _placement("p-later", POOL, "github:acme/api#10", PlacementState.EMBEDDED, timedelta(days=3)),
    _placement("p-css", CSS, "github:acme/api#7", PlacementState.OVERDUE, -timedelta(days=2)),
]
EXPECTED_PLATFORM = OverdueDigest(
    owner="platform",
    generated_at=NOW,
    items=(
        OverdueItem(
            placement_id="p-reminded",
            lesson_id=POOL,
            lesson_version=1,
            title=POOL_TITLE,
            team="payments",
            work_item_ref="github:acme/api#7",
            work_item_url=PR_URL,
            mandate=Mandate.REQUIRED,
            due_at=NOW - timedelta(days=3, hours=1),
            days_overdue=3,
            reminded=True,
            reminded_at=NOW - timedelta(days=2),
        ),
        OverdueItem(
            placement_id="p-overdue",
            lesson_id=POOL,
            lesson_version=1,
            title=POOL_TITLE,
            team="ledger",
            work_item_ref="jira:PAY-9",
            work_item_url=JIRA_URL,
            mandate=Mandate.REVIEW_AND_JUSTIFY,
            due_at=NOW - timedelta(days=1, hours=12),
            days_overdue=1,
            reminded=False,
        ),
        OverdueItem(
            placement_id="p-unswept",
            lesson_id=POOL,
            lesson_version=1,
            title=POOL_TITLE,
            team=None,
            work_item_ref="github:acme/web#3",
            work_item_url=None,
            mandate=Mandate.REQUIRED,
            due_at=NOW - timedelta(hours=5),
            days_overdue=0,
            reminded=False,
        ),
    ),
)
EXPECTED_WEB = OverdueDigest(
    owner="web-platform",
    generated_at=NOW,
    items=(
        OverdueItem(
            placement_id="p-css",
            lesson_id=CSS,
            lesson_version=1,
            title=CSS_TITLE,
            team="payments",
            work_item_ref="github:acme/api#7",
            work_item_url=PR_URL,
            mandate=Mandate.REQUIRED,
            due_at=NOW - timedelta(days=2),
            days_overdue=2,
            reminded=False,
        ),
    ),
)


def seed(db: Database, placed: list[Placement] = SEEDED) -> None:
    publish_examples(db)
    with db.transaction() as session:
        for item in (
            WorkItem(
                system=System.GITHUB,
                ref="github:acme/api#7",
                url=PR_URL,  # type: ignore[arg-type]
                project="acme/api",
                type="pull_request",
                team="payments",
            ),
            WorkItem(
                system=System.JIRA,
                ref="jira:PAY-9",
                url=JIRA_URL,  # type: ignore[arg-type]
                project="PAY",
                type="Story",
                team="ledger",
            ),
            WorkItem(
                system=System.GITHUB,
                ref="github:acme/web#3",
                project="acme/web",
                type="pull_request",
            ),
        ):
            work_items.record(session, item, NOW - timedelta(days=10))
        for placement in placed:
            placements.add(session, placement)


def test_the_digest_lists_exactly_the_owners_overdue_placements(db: Database) -> None:
    seed(db)
    assert digest(db, "platform", NOW) == EXPECTED_PLATFORM
    assert digest(db, "web-platform", NOW) == EXPECTED_WEB
    assert digest(db, "nobody", NOW) == OverdueDigest(owner="nobody", generated_at=NOW)


def test_the_api_and_the_cli_show_the_digest(database_url: str, webhook_secret: str) -> None:
    with serving(database_url, webhook_secret, prepare=seed, overdue_sweep_seconds=3600) as (
        client,
        _db,
    ):
        answer = client.get("/api/v1/reports/overdue", params={"owner": "platform"})
        assert answer.status_code == 200, answer.text
        shown = answer.json()
        assert datetime.fromisoformat(shown.pop("generated_at")) >= NOW
        expected = EXPECTED_PLATFORM.model_dump(mode="json")
        del expected["generated_at"]
        assert shown == expected
        assert client.get("/api/v1/reports/overdue").status_code == 422

    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": database_url}
    command = ["report", "overdue", "--owner"]
    as_json = runner.invoke(main, [*command, "web-platform", "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.output)
    del shown["generated_at"]
    expected = EXPECTED_WEB.model_dump(mode="json")
    del expected["generated_at"]
    assert shown == expected
    as_csv = runner.invoke(main, [*command, "platform", "--format", "csv"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    day = (NOW - timedelta(days=3, hours=1)).date().isoformat()
    day_2 = (NOW - timedelta(days=1, hours=12)).date().isoformat()
    day_3 = (NOW - timedelta(hours=5)).date().isoformat()
    assert as_csv.output.splitlines() == [
        "lesson,title,team,work_item,due,days_overdue,reminded",
        f"{POOL},{POOL_TITLE},payments,github:acme/api#7,{day},3,yes",
        f"{POOL},{POOL_TITLE},ledger,jira:PAY-9,{day_2},1,no",
        f"{POOL},{POOL_TITLE},,github:acme/web#3,{day_3},0,no",
    ]
    table = runner.invoke(main, [*command, "web-platform"], env=env)
    assert table.exit_code == 0, table.output
    assert [line.split() for line in table.output.splitlines()] == [
        ["lesson", "title", "team", "work_item", "due", "days_overdue", "reminded"],
        [CSS, *CSS_TITLE.split(), "payments", "github:acme/api#7", _day(2), "2", "no"],
    ]


def _day(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).date().isoformat()


@dataclass
class Receiver:
    """A webhook receiver on loopback that checks every signature and records what came."""

    secret: str
    fail_first: int = 0
    always: int | None = None
    url: str = ""
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            try:
                Webhook(self.secret).verify(body, headers)
            except Exception:
                return 401, {"error": "bad signature"}, {}
            self.attempts.append(headers["webhook-id"])
            if self.always is not None:
                return self.always, {"error": "down"}, {}
            if self.fail_first > 0:
                self.fail_first -= 1
                return 503, {"error": "try again"}, {"Retry-After": "0"}
            self.received.append((headers, json.loads(body)))
            return 204, None, {}


@pytest.fixture
def receiver(webhook_secret: str) -> Iterator[Receiver]:
    found = Receiver(webhook_secret)
    with serve(found.answer) as url:
        found.url = f"{url}/cairn/digests"
        yield found


def sender(receiver: Receiver) -> WebhookSender:
    return WebhookSender(
        receiver.url, receiver.secret, policy=RetryPolicy(attempts=3, base_wait=0.01, max_wait=1)
    )


def test_digests_are_pushed_signed_retried_and_once_per_interval(
    db: Database, receiver: Receiver
) -> None:
    seed(db)
    receiver.fail_first = 1
    digests = Digests(sender(receiver), INTERVAL)
    assert push_digests(db, digests, NOW) == 2
    bodies = [body for _headers, body in receiver.received]
    assert bodies == [
        {
            "type": DIGEST_TYPE,
            "timestamp": NOW.isoformat(),
            "data": EXPECTED_PLATFORM.model_dump(mode="json"),
        },
        {
            "type": DIGEST_TYPE,
            "timestamp": NOW.isoformat(),
            "data": EXPECTED_WEB.model_dump(mode="json"),
        },
    ]
    # The refused first try was retried with the same message id.
    ids = [headers["webhook-id"] for headers, _body in receiver.received]
    assert receiver.attempts == [ids[0], *ids] and len(set(ids)) == 2

    assert push_digests(db, digests, NOW + INTERVAL - timedelta(minutes=1)) == 0
    assert len(receiver.attempts) == 3
    assert push_digests(db, digests, NOW + INTERVAL) == 2
    assert len(receiver.received) == 4
    with db.transaction() as session:
        entries = audit.entries(session, action="overdue.digest")
    assert [(e.subject, e.details["placements"]) for e in entries] == [
        ("owner:platform", ["p-reminded", "p-overdue", "p-unswept"]),
        ("owner:web-platform", ["p-css"]),
    ] * 2
    assert [e.details["webhook_id"] for e in entries[:2]] == ids


def test_a_failed_push_is_tried_again_at_the_next_sweep(
    db: Database, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    seed(db, [p for p in SEEDED if p.lesson_id == CSS])
    receiver.always = 500
    digests = Digests(sender(receiver), INTERVAL)
    with caplog.at_level(logging.INFO):
        assert push_digests(db, digests, NOW) == 0
    assert len(receiver.attempts) == 3  # three tries, then given up until the next sweep
    assert "overdue digest for web-platform not delivered" in caplog.text
    assert receiver.secret not in caplog.text and receiver.secret not in repr(digests)
    receiver.always = None
    assert push_digests(db, digests, NOW + timedelta(minutes=1)) == 1
    assert [body["data"]["owner"] for _headers, body in receiver.received] == ["web-platform"]


def test_the_running_app_pushes_digests(
    database_url: str, webhook_secret: str, receiver: Receiver
) -> None:
    def prepare(db: Database) -> None:
        publish_examples(db)
        late = _placement("p-late", CSS, "github:acme/api#7", PlacementState.EMBEDDED, timedelta(0))
        now = datetime.now(UTC)
        with db.transaction() as session:
            placements.add(
                session,
                late.model_copy(
                    update={
                        "due_at": now - timedelta(hours=1),
                        "created_at": now - timedelta(days=1),
                        "updated_at": now - timedelta(days=1),
                    }
                ),
            )

    with serving(
        database_url,
        webhook_secret,
        prepare=prepare,
        overdue_sweep_seconds=0.05,
        digest_webhook_url=receiver.url,
        digest_webhook_secret=SecretStr(receiver.secret),
    ):
        deadline = time.monotonic() + 10
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # later sweeps within the interval send nothing more
    assert len(receiver.received) == 1
    [(_headers, body)] = receiver.received
    assert body["type"] == DIGEST_TYPE and body["data"]["owner"] == "web-platform"
    [item] = body["data"]["items"]
    assert (item["placement_id"], item["days_overdue"], item["reminded"]) == ("p-late", 0, False)


def test_digest_settings_are_checked(sqlite_url: str) -> None:
    with pytest.raises(ValidationError, match="CAIRN_DIGEST_WEBHOOK_SECRET"):
        Settings(digest_webhook_url="https://hooks.example.com/cairn")
    settings = Settings(
        database_url=SecretStr(sqlite_url),
        digest_webhook_url="https://hooks.example.com/cairn",
        digest_webhook_secret=SecretStr("not-a-whsec-secret"),
    )
    with pytest.raises(ConfigurationError, match="CAIRN_DIGEST_WEBHOOK_SECRET") as raised:
        OverdueSweeper.configured(Database(sqlite_url), settings, {})
    assert "not-a-whsec-secret" not in str(raised.value)
    assert Settings(digest_webhook_url="").digest_webhook_url == ""
