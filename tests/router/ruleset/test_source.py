"""The rule-set version names the packs' content, not where the checkout is or how it was typed."""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from router.cli import main
from router.ruleset.active import ActiveRules
from router.ruleset.source import fingerprint, load_rule_set, read_rule_files
from tests.router.support import EXAMPLES


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def test_moving_or_respelling_the_rules_path_keeps_the_version(tmp_path: Path) -> None:
    first = tmp_path / "checkout-a" / "rules"
    shutil.copytree(EXAMPLES, first, ignore=shutil.ignore_patterns("*.json"))
    moved = tmp_path / "elsewhere" / "deeper" / "rules"
    shutil.copytree(first, moved)
    version = load_rule_set(first).version
    assert load_rule_set(moved).version == version
    assert load_rule_set(first / ".." / "rules").version == version
    with working_directory(first.parent):
        assert load_rule_set(Path("rules")).version == version
        assert load_rule_set(Path("./rules/")).version == version
    with working_directory(first):
        assert load_rule_set(Path(".")).version == version
        validated = CliRunner().invoke(main, ["rules", "validate", "."])
    assert validated.exit_code == 0, validated.output
    assert validated.output.endswith(f"version {version}\n")


def test_content_and_relative_names_still_change_the_version(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("*.json"))
    version = load_rule_set(root).version
    (root / "organisation.yaml").rename(root / "org.yaml")
    renamed = load_rule_set(root).version
    assert renamed != version
    (root / "teams").mkdir()
    (root / "team-payments.yaml").rename(root / "teams" / "team-payments.yaml")
    assert load_rule_set(root).version not in (version, renamed)
    single = root / "org.yaml"
    copy = tmp_path / "copy" / "org.yaml"
    copy.parent.mkdir()
    shutil.copy(single, copy)
    assert load_rule_set(single).version == load_rule_set(copy).version


def test_reloading_parses_only_changed_files_and_reports_a_bad_edit_until_reverted(
    tmp_path: Path,
) -> None:
    root = tmp_path / "rules"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("*.json"))
    active = ActiveRules(root)
    version = active.version
    pack = root / "organisation.yaml"
    good = pack.read_text()
    files = read_rule_files(root)
    assert fingerprint(files) == fingerprint(read_rule_files(root))

    assert active.reload() is False  # unchanged: nothing parsed, nothing swapped
    pack.write_text(good + "\nbroken: [\n")
    assert fingerprint(read_rule_files(root)) != fingerprint(files)
    assert active.reload() is False
    assert active.last_error is not None and "organisation.yaml" in active.last_error
    assert active.reload() is False  # still broken, still reported, the old set in force
    assert active.last_error is not None and active.version == version

    pack.write_text(good)
    assert active.reload() is False  # the same rules as in force: no swap, the error cleared
    assert active.last_error is None
    pack.write_text(good.replace("max_items_per_work_item: 5", "max_items_per_work_item: 4"))
    assert active.reload() is True
    assert active.version != version
