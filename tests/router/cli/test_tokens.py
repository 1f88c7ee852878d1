"""`cairn tokens …` through the real CLI: shown once, stored as a hash, listed, revoked."""

from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient
from pydantic import SecretStr

from router.cli import main
from router.compose import build_runtime
from router.http.app import create_app
from router.settings import Settings
from store import audit, migrate
from store.engine import Database
from store.tables import ApiTokenRow


def test_create_list_use_and_revoke(sqlite_url: str, tmp_path: Path) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    runner = CliRunner()
    env = {"CAIRN_DATABASE_URL": sqlite_url, "LOGNAME": "ops"}

    def cairn(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, ["tokens", *args], env=env)
        assert result.exit_code == code, result.output
        return result.output

    created = runner.invoke(
        main,
        ["tokens", "create", "--name", "pay-lead", "--role", "owner", "--team", "payments"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("cairn_") and len(secret) >= 60
    assert "shown once" in created.stderr and "expires 20" in created.stderr

    listed = cairn("list")
    assert listed.startswith("pay-lead\towner\tpayments\tcreated ")
    assert "by cli:ops" in listed and "last used never" in listed
    assert secret not in listed and secret.split("_")[-1] not in listed
    with db.transaction() as session:
        row = session.query(ApiTokenRow).one()
        assert secret not in (row.secret_hash, row.id)

    settings = Settings(database_url=SecretStr(sqlite_url), poll_interval=0.05)
    with TestClient(create_app(build_runtime(settings))) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.json()["id"] == "token:pay-lead"
        assert "revoked" in cairn("revoke", "pay-lead", "--as", "incident-42")
        after = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert after.status_code == 401
    assert "expires revoked" in cairn("list")
    with db.transaction() as session:
        trail = [(e.action, e.actor, e.details.get("label")) for e in audit.entries(session)]
    assert trail == [
        ("token.created", "cli:ops", None),
        ("token.revoked", "cli:ops", "incident-42"),
    ]

    # Names are never reused, so `token:pay-lead` in the audit log means one token.
    reused = cairn("create", "--name", "pay-lead", "--role", "reader", code=1)
    assert "exists already" in reused
    assert "needs at least one --team" in cairn("create", "--name", "x", "--role", "owner", code=1)
    scoped = cairn("create", "--name", "y", "--role", "reader", "--team", "a", code=1)
    assert "scope owner tokens only" in scoped
    bad_name = cairn("create", "--name", "Bad Name", "--role", "reader", code=1)
    assert "lower-case" in bad_name
    assert "90d" in cairn("create", "--name", "z", "--role", "reader", "--expires", "soon", code=2)
    assert "no token named" in cairn("revoke", "nobody", code=1)
    db.dispose()
