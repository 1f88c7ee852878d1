"""`cairn audit verify|head`: check the audit log's hash chain, print its head for anchoring."""

import click

from router.cli.support import checked_database
from store import audit


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
def verify() -> None:
    """Walk the whole chain; exit 1 naming the first altered, missing, extra or moved row."""
    with checked_database() as db, db.transaction() as session:
        verdict = audit.verify(session)
        head = audit.head(session)
    if not verdict.intact:
        click.echo(f"audit log NOT intact after {verdict.checked} entries: {verdict.problem}")
        raise SystemExit(1)
    click.echo(f"audit log intact: {verdict.checked} entries, head {head.seq} {head.hash}")


@audit_group.command("head")
def head() -> None:
    """Print the newest entry's sequence number and hash, to anchor outside Cairn."""
    with checked_database() as db, db.transaction() as session:
        found = audit.head(session)
    click.echo(f"{found.seq} {found.hash}")
