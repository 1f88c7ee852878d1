"""`cairn lessons …`: the review workflow from the command line, on a real database."""

import json
from pathlib import Path

from click.testing import CliRunner

from router.cli import main
from store import audit, migrate
from store.engine import Database
from tests.router.support import DRAFT


def test_review_workflow_from_the_command_line(sqlite_url: str, tmp_path: Path) -> None:
    database = Database(sqlite_url)
    migrate.upgrade(database)
    database.dispose()
    env = {"CAIRN_DATABASE_URL": sqlite_url}
    runner = CliRunner()

    def cairn(*args: str, user: str = "dana") -> str:
        # The operator is the operating-system account (LOGNAME); --as is only a label.
        result = runner.invoke(main, ["lessons", *args], env={**env, "LOGNAME": user})
        assert result.exit_code == 0, result.output
        return result.stdout  # `show` adds a recurrence line on stderr

    draft = tmp_path / "lesson.json"
    draft.write_text(json.dumps({**DRAFT, "review_by": "2026-12-01"}))
    assert cairn("create", str(draft), "--as", "Dana S.").startswith("derive-pool-size@1\tdraft")
    cairn("submit", "derive-pool-size")
    # A different --as label does not make the same operator someone else.
    refused = runner.invoke(
        main,
        ["lessons", "approve", "derive-pool-size", "--as", "lee"],
        env={**env, "LOGNAME": "dana"},
    )
    assert refused.exit_code == 1 and "cannot also approve" in refused.output
    cairn("approve", "derive-pool-size", "--as", "Lee R.", "--mandate", "required", user="lee")
    assert "\tpublished\trequired\t" in cairn("publish", "derive-pool-size", user="lee")
    assert cairn("due", "--on", "2026-11-30") == ""
    assert cairn("due", "--on", "2026-12-01").startswith("derive-pool-size@1\tpublished")

    cairn("revise", "derive-pool-size")
    cairn("edit", "derive-pool-size", "--set", 'title="Pool size follows worker count"')
    assert (
        json.loads(cairn("show", "derive-pool-size"))["title"] == "Pool size follows worker count"
    )
    assert (
        json.loads(cairn("show", "derive-pool-size", "--version", "1"))["title"] == DRAFT["title"]
    )
    assert "\t0 placements withdrawn" in cairn("retire", "derive-pool-size")
    assert cairn("list", "--status", "retired").startswith("derive-pool-size@2\tretired")

    missing = runner.invoke(main, ["lessons", "show", "nope"], env=env)
    assert missing.exit_code == 1 and "does not exist" in missing.output

    with database.transaction() as session:
        trail = {(e.action, e.actor, e.details.get("label")) for e in audit.entries(session)}
    assert ("lesson.created", "cli:dana", "Dana S.") in trail
    assert ("lesson.approved", "cli:lee", "Lee R.") in trail
    assert ("lesson.published", "cli:lee", None) in trail
    shown = json.loads(cairn("show", "derive-pool-size", "--version", "1"))
    assert shown["provenance"]["captured_by"] == "cli:dana"
    assert shown["review"]["reviewer"] == "cli:lee"
