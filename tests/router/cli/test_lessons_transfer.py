"""`cairn lessons search|export|import|schema` and the recurrence line of `show`, on a real
database: errors at their line, all-or-nothing, idempotent, never over a newer version."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from router.cli import main
from store import migrate
from store.engine import Database
from tests.router.support import DRAFT, EXAMPLES

Cairn = Callable[..., Result]


@pytest.fixture
def cairn(sqlite_url: str) -> Cairn:
    database = Database(sqlite_url)
    migrate.upgrade(database)
    database.dispose()
    runner = CliRunner()

    def run(*args: str, code: int = 0, user: str = "dana") -> Result:
        env = {"CAIRN_DATABASE_URL": sqlite_url, "LOGNAME": user}  # the operator's account
        result = runner.invoke(main, ["lessons", *args], env=env)
        assert result.exit_code == code, result.output
        return result

    return run


def test_examples_import_then_search(cairn: Cairn) -> None:
    examples = str(EXAMPLES / "lessons.json")  # a bare list of lessons is accepted too
    assert cairn("import", examples, "--dry-run").stdout == (
        "would import: 2 created, 0 updated, 0 unchanged\n"
    )
    assert cairn("search", "pool").stdout == ""  # the dry run wrote nothing
    # The examples say `published` but carry no review record: they arrive as drafts...
    assert cairn("import", examples).stdout == "imported: 2 created, 0 updated, 0 unchanged\n"
    assert cairn("search", "pool", "--status", "published").stdout == ""
    assert cairn("import", examples).stdout == "nothing changed: all 2 entries are already here\n"
    # ...unless the importing admin vouches for them.
    trusted = cairn("import", examples, "--trust-reviews").stdout
    assert trusted == "imported: 0 created, 2 updated, 0 unchanged\n"
    assert cairn("import", examples).stdout == "nothing changed: all 2 entries are already here\n"
    found = cairn("search", "connection pool", "--status", "published", "--facets")
    assert found.stdout.splitlines()[0].startswith("derive-pool-size@1\tpublished")
    assert "tag: connection-pool 1, database 1" in found.stdout
    assert "1 found" in found.stderr
    assert cairn("search", "pool", "--status", "draft").stdout == ""
    assert cairn("search", 'AND( "').stdout == ""
    too_long = cairn("search", "x" * 600, code=1)
    assert "longer than 500 characters" in too_long.output
    shown = cairn("show", "derive-pool-size")
    assert json.loads(shown.stdout)["id"] == "derive-pool-size"
    assert shown.stderr == "recurrences: none\n"


def test_export_import_round_trip_and_conflicts(cairn: Cairn, tmp_path: Path) -> None:
    draft = tmp_path / "draft.json"
    draft.write_text(json.dumps(DRAFT))
    cairn("create", str(draft), "--as", "dana")
    cairn("submit", "derive-pool-size", "--as", "dana")
    cairn("approve", "derive-pool-size", user="lee")
    cairn("publish", "derive-pool-size", user="lee")
    cairn("revise", "derive-pool-size")
    exported = cairn("export", "--format", "yaml").stdout
    document = yaml.safe_load(exported)
    assert document["format"] == "cairn.lessons/1"
    assert [(e["version"], e["status"]) for e in document["lessons"]] == [
        (1, "published"),
        (2, "draft"),
    ]
    as_json = json.loads(cairn("export", "--format", "json", "--status", "draft").stdout)
    assert as_json == document
    assert cairn("export", "--status", "retired", "--format", "json").stdout.count("{") == 1
    file = tmp_path / "lessons.yaml"
    file.write_text(exported)
    assert cairn("import", str(file)).stdout.startswith("nothing changed: all 2 entries")

    # The database moves on: the file's version 2 draft is now older than what is here.
    cairn("edit", "derive-pool-size", "--set", 'title="Pool follows workers"')
    cairn("submit", "derive-pool-size", "--as", "dana")
    cairn("approve", "derive-pool-size", user="lee")
    cairn("publish", "derive-pool-size", user="lee")
    refused = cairn("import", str(file), code=1)
    assert "nothing imported, conflicts:" in refused.output
    assert "derive-pool-size@2 (draft): this database has derive-pool-size@2 (published)" in (
        refused.output
    )

    # A newer version in the file updates the lesson; the published version 1 is unchanged.
    edited = dict(document)
    edited["lessons"] = [{**document["lessons"][0]}, {**document["lessons"][1], "version": 3}]
    file.write_text(yaml.safe_dump(edited))
    assert cairn("import", str(file)).stdout == "imported: 0 created, 1 updated, 1 unchanged\n"
    assert json.loads(cairn("show", "derive-pool-size").stdout)["version"] == 3


def test_invalid_entries_are_reported_at_their_line_and_nothing_is_imported(
    cairn: Cairn, tmp_path: Path
) -> None:
    file = tmp_path / "bad.yaml"
    good = {**DRAFT, "id": "good-one", "version": 1}
    bad = {**DRAFT, "id": "bad-one", "version": 1, "title": "", "mandate": "maybe"}
    file.write_text(yaml.safe_dump({"format": "cairn.lessons/1", "lessons": [good, bad]}))
    lines = file.read_text().splitlines()
    title_line = next(n for n, text in enumerate(lines, 1) if text.strip() == "title: ''")
    result = cairn("import", str(file), code=1)
    assert f"{file}:{title_line}: entry 1 (id 'bad-one'): title: " in result.output
    assert "entry 1 (id 'bad-one'): mandate: Input should be" in result.output
    assert cairn("search", "").stdout == ""  # the valid entry was not imported either

    as_json = tmp_path / "bad.json"
    as_json.write_text(json.dumps([good, {**good, "owner": None}, good]))
    result = cairn("import", str(as_json), code=1)
    assert f"{as_json}: entry 1 (id 'good-one'): owner: Input should be a valid string" in (
        result.output
    )
    assert f"{as_json}: entry 2 (id 'good-one'): good-one@1 repeats entry 0" in result.output

    broken = tmp_path / "broken.json"
    broken.write_text('{"lessons": [\n  {"id": 1,}\n]}')
    assert f"{broken}:2: invalid JSON" in cairn("import", str(broken), code=1).output
    twice = tmp_path / "twice.yaml"
    twice.write_text("format: cairn.lessons/1\nlessons: []\nlessons: []\n")
    assert (
        f"{twice}:3: invalid YAML: repeated key 'lessons'"
        in cairn("import", str(twice), code=1).output
    )
    other = tmp_path / "other.yaml"
    other.write_text("format: cairn.lessons/9\nlessons: []\n")
    assert (
        f"{other}:1: format must be 'cairn.lessons/1'" in cairn("import", str(other), code=1).output
    )


def test_schema_describes_the_file(cairn: Cairn) -> None:
    schema = json.loads(cairn("schema").stdout)
    assert schema["properties"]["lessons"]["items"] == {"$ref": "#/$defs/Lesson"}
    assert "applicability" in schema["$defs"]["Lesson"]["properties"]
