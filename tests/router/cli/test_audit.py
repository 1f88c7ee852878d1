"""`cairn audit verify|head` on a real database: exit 0 when intact, 1 naming the altered row."""

from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import text

from router.cli import main
from store import audit, migrate
from store.engine import Database


def test_verify_and_head_from_the_command_line(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    for n in range(3):
        with db.transaction() as session:
            audit.record(
                session,
                actor="cli:ops",
                action="lesson.created",
                subject=f"l{n}",
                details={},
                now=datetime(2026, 12, 1, tzinfo=UTC),
            )
    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": sqlite_url}
    head = runner.invoke(main, ["audit", "head"], env=env)
    seq, digest = head.output.split()
    assert (head.exit_code, seq, len(digest)) == (0, "3", 64)
    intact = runner.invoke(main, ["audit", "verify"], env=env)
    assert intact.exit_code == 0 and f"intact: 3 entries, head 3 {digest}" in intact.output
    with db.transaction() as session:
        session.execute(text("UPDATE audit_log SET subject = 'forged' WHERE seq = 2"))
    broken = runner.invoke(main, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert "NOT intact after 1 entries" in broken.output and "(seq 2)" in broken.output
    db.dispose()
