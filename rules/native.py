"""Which build of the routing engine runs: the mypyc-compiled one when it was built from this
very `rules/engine.py`, else the source.

An install compiles `rules/engine.py` with mypyc (see setup.py), and Python then imports the
extension in preference to the source. An edited checkout would silently route with the old
build, so `rules/__init__.py` calls `prefer_fresh_engine` first: a compiled engine whose recorded
source digest differs from the source on disk is set aside (with a warning) and the source runs.
`CAIRN_RULES_ENGINE=python` makes the source run whatever is installed.
"""

import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
SOURCE = _HERE / "engine.py"
STAMP = _HERE / "engine.compiled-from"
"""The SHA-256 of the source the compiled engine was built from (written by the build)."""
ENGINE_MODULE = "rules.engine"


def compiled_path() -> Path | None:
    """The compiled engine's extension module, if one is installed beside the source."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = SOURCE.with_name("engine" + suffix)
        if path.exists():
            return path
    return None


def is_fresh() -> bool:
    """True when a compiled engine is installed and was built from the source on disk."""
    if compiled_path() is None or not STAMP.exists():
        return False
    built_from = STAMP.read_text(encoding="ascii").strip()
    return built_from == hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def load_source(name: str = "rules._engine_source") -> ModuleType:
    """Execute `rules/engine.py` as a new module called `name` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, SOURCE)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with the package
        raise ImportError(f"cannot load the routing engine from {SOURCE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def prefer_fresh_engine() -> None:
    """Make `import rules.engine` give the source unless a fresh compiled build is installed."""
    if ENGINE_MODULE in sys.modules or compiled_path() is None:
        return  # already decided, or nothing compiled to shadow the source
    forced = os.environ.get("CAIRN_RULES_ENGINE", "").lower() == "python"
    if not forced and is_fresh():
        return
    if not forced:
        warnings.warn(
            f"{SOURCE} changed since its compiled build; routing runs the source "
            "(reinstall to rebuild: pip install -e .)",
            RuntimeWarning,
            stacklevel=3,
        )
    module = load_source(ENGINE_MODULE)
    setattr(sys.modules["rules"], "engine", module)  # noqa: B010 (the package is half-built)


def build() -> str:
    """'compiled' when `rules.engine` is the mypyc build, else 'python'."""
    module = sys.modules.get(ENGINE_MODULE)
    if module is None:
        module = importlib.import_module(ENGINE_MODULE)
    return "python" if (module.__file__ or "").endswith(".py") else "compiled"
