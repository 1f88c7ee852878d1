"""`cairn tokens …`: API tokens for people and machines (the secret is printed once)."""

import click

from core.access import Role
from core.base import utcnow
from core.errors import ConflictError, NotFoundError
from router.access.operator import cli_principal
from router.access.tokens import TokenService, expiry_text, parse_expiry
from router.cli.support import checked_database


@click.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens."""


@tokens_group.command("create")
@click.option("--name", required=True, help="A unique name: the token acts as token:NAME.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    required=True,
    help="What the token may do; an owner token needs --team.",
)
@click.option("--team", "teams", multiple=True, help="A team an owner token acts for (repeat).")
@click.option("--expires", default="90d", show_default=True, help="90d, 12h, 30m or never.")
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def create(name: str, role: str, teams: tuple[str, ...], expires: str, label: str | None) -> None:
    """Create a token and print it once; only its hash is kept."""
    try:
        lifetime = parse_expiry(expires)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from exc
    with checked_database() as db:
        try:
            created = TokenService(db).create(
                name, Role(role), teams, lifetime, cli_principal(label)
            )
        except (ValueError, ConflictError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(created.secret)
    click.echo(
        f"token:{name} ({role}{', teams ' + ', '.join(created.record.teams) if teams else ''}), "
        f"expires {expiry_text(created.record, utcnow())}. It is shown once: store it now.",
        err=True,
    )


@tokens_group.command("list")
def list_tokens() -> None:
    """One line per token: name, role, teams, created, expiry, last used. Never a secret."""
    now = utcnow()
    with checked_database() as db:
        for record in TokenService(db).list():
            used = (
                record.last_used_at.isoformat(timespec="seconds")
                if record.last_used_at
                else "never"
            )
            created = record.created_at.isoformat(timespec="seconds")
            click.echo(
                f"{record.name}\t{record.role.value}\t{','.join(record.teams) or '-'}\t"
                f"created {created} by {record.created_by}\t"
                f"expires {expiry_text(record, now)}\tlast used {used}"
            )


@tokens_group.command("revoke")
@click.argument("name")
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def revoke(name: str, label: str | None) -> None:
    """Revoke a token at once; its name is never reused.

    NAME is the token's name, without the `token:` prefix.
    """
    with checked_database() as db:
        try:
            TokenService(db).revoke(name, cli_principal(label))
        except NotFoundError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"token:{name} revoked")
