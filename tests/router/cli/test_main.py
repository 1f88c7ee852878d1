"""The `cairn` command: demo, schema handling, queue inspection and settings errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from router.cli import main
from store import migrate

CAIRN = str(Path(sys.executable).parent / "cairn")


def test_demo_runs_the_loop_on_the_embedded_default(tmp_path: Path) -> None:
    done = subprocess.run(
        [CAIRN, "demo", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all steps behaved as expected" in done.stdout
    out = done.stdout
    assert "same event again: 200 duplicate" in out
    assert "body changed after signing: 401" in out
    assert "draft lesson from-pagerduty-q2zn4hg3pvvd5x" in out
    assert "github:acme/payments-api#1 body after 1 write(s)" in out
    assert "TICKED signal recorded" in out
    assert "signal for from-pagerduty-q2zn4hg3pvvd5x: ticked" in out
    assert "6 of 6 deliveries processed" in out
    # The captured lesson is revised after both trackers show it: both items take version 2.
    lesson = "from-pagerduty-q2zn4hg3pvvd5x"
    assert f"{lesson}@2 revised and submitted by token:demo-payments-lead" in out
    assert re.search(
        r"^- \[ \] \*\*Payments API returned 502 after connection-pool exhaustion\*\*: .*"
        r"under its max\\_connections\. _\(updated to v2\)_ <!-- cairn:item:pl_\w+ -->$",
        out,
        re.MULTILINE,
    ), out
    assert re.search(r"jira:PAY-1 item: \[x\] .* max_connections\. — updated to v2 — ", out)
    assert f"github:acme/payments-api#1 <- {lesson}@2 github.pr_checklist, required" in out
    assert f"jira:PAY-1 <- {lesson}@2 jira.checklist, required" in out
    assert (tmp_path / "cairn-demo.db").exists()


def test_serve_refuses_an_unmigrated_database_and_upgrade_fixes_it(sqlite_url: str) -> None:
    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": sqlite_url}
    refused = runner.invoke(main, ["serve"], env=env)
    assert refused.exit_code == 1
    assert "run `cairn db upgrade`" in refused.output
    path = sqlite_url.removeprefix("sqlite:///")
    assert not Path(path).exists()  # a refused command leaves no empty database behind

    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"schema revision {migrate.head_revision()}" in upgraded.output
    current = runner.invoke(main, ["db", "current"], env=env)
    assert (
        current.output.strip()
        == f"current {migrate.head_revision()}, head {migrate.head_revision()}"
    )

    status = runner.invoke(main, ["queue", "status"], env=env)
    assert json.loads(status.output) == {"pending": 0, "leased": 0, "done": 0, "dead": 0}


def test_bad_settings_name_the_variable_and_hide_secrets(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["db", "upgrade"],
        env={
            "CAIRN_DATABASE_URL": sqlite_url,
            "CAIRN_PORT": "not-a-port",
            "CAIRN_GENERIC_WEBHOOK_SECRET": "whsec_c2VjcmV0LXZhbHVlLWRvLW5vdC1sZWFr",
        },
    )
    assert result.exit_code == 1
    assert "invalid CAIRN_* settings" in result.output
    assert "port" in result.output
    assert "c2VjcmV0LXZhbHVlLWRvLW5vdC1sZWFr" not in result.output


def test_queue_dead_lists_and_retry_dead_requeues(sqlite_url: str) -> None:
    from core.base import utcnow
    from store import outbox
    from store.engine import Database

    database = Database(sqlite_url)
    migrate.upgrade(database)
    with database.transaction() as session:
        message_id = outbox.enqueue(session, topic="inbound", payload={}, key="k", now=utcnow())
        outbox.fail(session, message_id, error="PayloadError: broken", now=utcnow(), max_attempts=0)
    database.dispose()

    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": sqlite_url}
    dead = runner.invoke(main, ["queue", "dead"], env=env)
    assert dead.output.strip() == f"{message_id}\tinbound\t0\tPayloadError: broken"
    retried = runner.invoke(main, ["queue", "retry-dead"], env=env)
    assert retried.output.strip() == "requeued 1 messages"
    status = runner.invoke(main, ["queue", "status"], env=env)
    assert json.loads(status.output)["pending"] == 1


def test_logged_urls_never_show_a_password() -> None:
    from router.settings import mask_password

    cases = {
        "postgresql://u:S3CRET@db:5432/x": "postgresql://u:***@db:5432/x",
        "postgresql://u@db/x?password=S3CRET&sslmode=require": (
            "postgresql://u@db/x?password=***&sslmode=require"
        ),
        "amqp://guest:S3CRET@127.0.0.1:5672/": "amqp://guest:***@127.0.0.1:5672/",
        "sqlite:///cairn.db": "sqlite:///cairn.db",
    }
    for url, masked in cases.items():
        assert mask_password(url) == masked
        assert "S3CRET" not in mask_password(url)
