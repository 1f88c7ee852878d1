"""Dependency rules between packages, and the connector registry's completeness."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.registry import LMS_PACKAGES, SOURCES
from router.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONNECTORS = ROOT / "connectors"
PURE_PACKAGES = ("core", "rules")
IO_LIBRARIES = frozenset(
    {
        "faststream",
        "sqlalchemy",
        "httpx",
        "requests",
        "tenacity",
        "jira",
        "github",
        "fastapi",
        "starlette",
        "aio_pika",
        "psycopg",
        "uvicorn",
    }
)


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module `source` (the code of `module`) imports."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                prefix = f"{base}.{node.module}" if node.module else base
            else:
                prefix = node.module or ""
            found.add(prefix)
            # `from connectors import jira` imports the package connectors.jira.
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path) -> tuple[str, bool]:
    """Dotted module name of a file under ROOT, and whether it is a package's __init__."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def python_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if ".venv" not in p.parts)


def connector_packages() -> list[str]:
    return sorted(
        p.name for p in CONNECTORS.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    )


# --- the scanner itself -------------------------------------------------------------------------


def test_scanner_finds_every_import_form() -> None:
    source = (
        "import sqlalchemy.orm\n"
        "from fastapi import APIRouter\n"
        "from connectors import jira\n"
        "from ..github import client\n"
        "from . import fake\n"
        "def f():\n    import tenacity\n"
    )
    found = imported_modules(source, "connectors.pagerduty.webhook")
    assert {
        "sqlalchemy.orm",
        "fastapi",
        "connectors.jira",
        "connectors.github.client",
        "connectors.pagerduty.fake",
        "tenacity",
    } <= found


def test_scanner_resolves_relative_imports_in_a_package_init() -> None:
    found = imported_modules("from .webhook import parse\n", "connectors.jira", is_package=True)
    assert "connectors.jira.webhook" in found


# --- import-linter ------------------------------------------------------------------------------


def test_import_linter_contracts_hold() -> None:
    executable = Path(sys.executable).parent / "lint-imports"
    assert executable.exists(), f"{executable} is missing: install the test extra"
    result = subprocess.run(
        [str(executable)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- direct AST checks --------------------------------------------------------------------------


def test_there_are_connector_packages_to_check() -> None:
    assert "generic" in connector_packages()


@pytest.mark.parametrize("name", connector_packages())
def test_connectors_never_import_each_other(name: str) -> None:
    others = set(connector_packages()) - {name}
    files = python_files(CONNECTORS / name)
    assert files
    violations = []
    for path in files:
        module, is_package = module_name(path)
        for imported in imported_modules(path.read_text(), module, is_package):
            parts = imported.split(".")
            if parts[0] == "connectors" and len(parts) > 1 and parts[1] in others:
                violations.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert violations == []


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_import_no_io_library(package: str) -> None:
    files = python_files(ROOT / package)
    assert files
    violations = []
    for path in files:
        module, is_package = module_name(path)
        for imported in imported_modules(path.read_text(), module, is_package):
            if imported.split(".")[0] in IO_LIBRARIES:
                violations.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert violations == []


def test_core_imports_only_core_among_our_packages() -> None:
    ours = {"rules", "connectors", "store", "router"}
    violations = []
    for path in python_files(ROOT / "core"):
        module, is_package = module_name(path)
        for imported in imported_modules(path.read_text(), module, is_package):
            if imported.split(".")[0] in ours:
                violations.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert violations == []


# --- the registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", connector_packages())
def test_every_connector_package_is_registered(name: str) -> None:
    registered = {spec.package for spec in SOURCES.values()} | set(LMS_PACKAGES.values())
    assert f"connectors.{name}" in registered


@pytest.mark.parametrize("name", connector_packages())
def test_every_connector_package_has_fixtures(name: str) -> None:
    fixtures = CONNECTORS / name / "fixtures"
    assert fixtures.is_dir(), f"{fixtures} is missing"
    assert [p for p in fixtures.iterdir() if p.is_file() and p.stat().st_size > 0]


@pytest.mark.parametrize("key", sorted(SOURCES))
def test_registry_entries_are_consistent(key: str) -> None:
    spec = SOURCES[key]
    assert spec.name == key
    package_dir = ROOT / spec.package.replace(".", "/")
    assert (package_dir / "__init__.py").is_file(), f"{spec.package} is not a package"
    assert spec.secret_env.startswith("CAIRN_")
    # compose.build_verifiers reads the secret from this Settings field; a typo would silently
    # disable the source.
    assert spec.secret_env.removeprefix("CAIRN_").lower() in Settings.model_fields
    assert callable(spec.verifier)
    assert callable(spec.parse)
