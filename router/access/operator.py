"""The local operator: CLI commands that open the database directly act as `cli:<os user>`."""

import getpass
import os

from core.access import Principal, Role


def cli_principal(label: str | None = None) -> Principal:
    """The operator running this command; `label` (`--as`) is recorded beside the id, never as it.

    Whoever can run the CLI against the database can change it directly, so the operator holds
    every right; the id names the operating-system account that used them.
    """
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the password database
        user = f"uid{os.getuid()}"
    # A label is free text from the command line: one printable line, at most 200 characters.
    clean = "".join(ch if ch.isprintable() else " " for ch in label or "").strip()[:200]
    return Principal(id=f"cli:{user}", roles=frozenset({Role.ADMIN}), label=clean or None)
