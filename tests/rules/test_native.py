"""The compiled routing engine: installed and fresh where CI builds it, and never run in place of
an edited source."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rules import native
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import rules.engine, rules.native; print(rules.native.build(), rules.engine.__file__)"


def _require_compiled() -> Path:
    found = native.compiled_path()
    if found is None:
        message = "no compiled routing engine is installed (pip install -e . builds one)"
        if IN_CI:
            pytest.fail(message + "; CI=true installs with a C compiler, so the build failed")
        pytest.skip(message)
    return found


def test_the_installed_engine_is_the_fresh_compiled_build() -> None:
    _require_compiled()
    assert native.is_fresh(), "the compiled engine was built from another rules/engine.py"
    assert native.build() == "compiled"


def test_the_source_build_loads_apart_from_the_installed_one() -> None:
    source = native.load_source("rules._engine_source_test")
    try:
        assert source.__file__ == str(native.SOURCE)
        assert source.Engine is not sys.modules["rules.engine"].Engine
    finally:
        del sys.modules["rules._engine_source_test"]


def _copy_tree(tmp_path: Path) -> Path:
    """The packages the engine needs, compiled engine and stamp included, in a new folder."""
    for package in ("core", "rules"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path / "rules" / "engine.py"


def _probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "CAIRN_RULES_ENGINE"}
    environment.update(PYTHONPATH=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_an_unchanged_copy_runs_its_compiled_build(tmp_path: Path) -> None:
    _require_compiled()
    _copy_tree(tmp_path)
    result = _probe(tmp_path)
    build, path = result.stdout.split()
    assert build == "compiled"
    assert Path(path).parent == tmp_path / "rules"
    assert "RuntimeWarning" not in result.stderr


def test_an_edited_source_runs_instead_of_its_stale_build(tmp_path: Path) -> None:
    _require_compiled()
    source = _copy_tree(tmp_path)
    source.write_text(source.read_text(encoding="utf-8") + "\nEDITED = True\n", encoding="utf-8")
    result = _probe(tmp_path)
    build, path = result.stdout.split()
    assert (build, Path(path)) == ("python", source)
    assert "changed since its compiled build" in result.stderr


def test_the_source_can_be_chosen_over_a_fresh_build(tmp_path: Path) -> None:
    _require_compiled()
    source = _copy_tree(tmp_path)
    result = _probe(tmp_path, CAIRN_RULES_ENGINE="python")
    build, path = result.stdout.split()
    assert (build, Path(path)) == ("python", source)
    assert "RuntimeWarning" not in result.stderr
