"""Build hook: compile the routing engine (`rules/engine.py`) to a C extension with mypyc.

Everything else is declared in pyproject.toml. The compiled engine is an accelerator only: the
source stays importable, `CAIRN_PURE_PYTHON=1` skips compiling, and a machine without a C
compiler gets a working pure-Python install with a warning instead of a failed one. Next to the
extension, `engine.compiled-from` records the SHA-256 of the source it was built from, so
`rules.native` can tell a stale build (an edited checkout) from a fresh one.
"""

import hashlib
import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ENGINE = "rules/engine.py"
STAMP = "engine.compiled-from"


def _warn(message: str) -> None:
    print(f"cairn: {message}; the routing engine runs as pure Python", file=sys.stderr)


def _extensions() -> list[Extension]:
    if os.environ.get("CAIRN_PURE_PYTHON", "").lower() in ("1", "true", "yes"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        _warn(f"mypyc is not available ({exc})")
        return []
    # Only this module is compiled. Its imports are read for their types but not checked here
    # (CI type-checks the whole tree with the project's own strict configuration, whose
    # plugins need the runtime dependencies), so the build environment needs only mypy.
    flags = [
        "--config-file",
        os.devnull,
        "--follow-imports=silent",
        "--ignore-missing-imports",
    ]
    try:
        return mypycify([*flags, ENGINE], opt_level="3")
    except (Exception, SystemExit) as exc:  # mypyc reports type errors by exiting
        _warn(f"mypyc could not translate {ENGINE} ({exc!r})")
        return []


class BuildExt(build_ext):
    """Builds the compiled engine, or nothing when that fails; stamps what it was built from."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler, missing headers: fall back, never fail
            self._remove_outputs()
            _warn(f"compiling the routing engine failed ({exc!r})")
            return
        for ext in self.extensions:
            if ext.name == "rules.engine":
                stamp = Path(self.get_ext_fullpath(ext.name)).with_name(STAMP)
                digest = hashlib.sha256(Path(ENGINE).read_bytes()).hexdigest()
                stamp.write_text(digest + "\n", encoding="ascii")

    def _remove_outputs(self) -> None:
        # A shim without its library would break `import rules.engine`: leave no half build.
        for ext in self.extensions:
            Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
