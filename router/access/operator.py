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
    return Principal(id=f"cli:{user}", roles=frozenset({Role.ADMIN}), label=label or None)
