"""Reading rule files from disk (the I/O half of the pure `rules` package)."""

import hashlib
from pathlib import Path

from rules.loader import RuleError, RuleSet, RuleSetError, build_rule_set


def read_rule_files(path: Path) -> list[tuple[str, str, str]]:
    """(name as given, text, path relative to the rules root) of a rule file, or of every
    *.yaml / *.yml file under a directory."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise RuleSetError(
                [RuleError(str(path), None, None, "no *.yaml rule files in directory")]
            )
        return [
            (str(f), f.read_text(encoding="utf-8"), f.relative_to(path).as_posix()) for f in files
        ]
    if not path.exists():
        raise RuleSetError([RuleError(str(path), None, None, "no such file or directory")])
    return [(str(path), path.read_text(encoding="utf-8"), path.name)]


def load_rule_set(path: Path) -> RuleSet:
    """Read and validate; RuleSetError lists every problem with file:line:column.

    The version depends on the files' content and their paths below `path` only.
    """
    return rule_set_of(read_rule_files(path))


def rule_set_of(files: list[tuple[str, str, str]]) -> RuleSet:
    """Validate rule files as `read_rule_files` gives them."""
    return build_rule_set(
        [(name, text) for name, text, _ in files], {name: key for name, _, key in files}
    )


def fingerprint(files: list[tuple[str, str, str]]) -> str:
    """A digest of rule files' names, paths and content: equal exactly when nothing changed,
    so an unchanged set is not parsed again."""
    digest = hashlib.sha256()
    for name, text, key in files:
        for part in (name, key, text):
            encoded = part.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
    return digest.hexdigest()
