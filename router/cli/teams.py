"""`cairn teams import|list|show`: the team → members map that training is assigned to."""

import json
from pathlib import Path

import click

from core.errors import ConflictError
from core.team import LMS_COLUMNS, LOGIN_COLUMNS, Member, Team, TeamFileError
from router.access.operator import cli_principal
from router.access.teams import TeamService
from router.cli.report import write_rows
from router.cli.support import checked_database

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, JSON for programs.",
)


@click.group("teams")
def teams_group() -> None:
    """The team → members map: who a team's training goes to, and their LMS ids."""


@teams_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "label", default=None, help="A label recorded beside the operator.")
def import_(file: Path, label: str | None) -> None:
    """Replace each team FILE lists by the members it gives; teams it does not list stay.

    FILE is YAML (`teams: {TEAM: [{person, name, email, moodle, canvas, xapi, github, jira}]}`)
    or CSV (`*.csv`, header `team,person,name,email,moodle,canvas,xapi,github,jira`). It is
    checked whole: on any problem each is printed as FILE:LINE and nothing is written (exit 1).
    """
    with checked_database() as db:
        try:
            done = TeamService(db).import_file(file, str(file), cli_principal(label))
        except TeamFileError as exc:
            for error in exc.errors:
                click.echo(error, err=True)
            click.echo("nothing imported", err=True)
            raise SystemExit(1) from exc
        except ConflictError as exc:
            raise click.ClickException(str(exc)) from exc
    for team, counts in done.items():
        click.echo(
            f"{team}: {counts['added']} added, {counts['changed']} changed, "
            f"{counts['removed']} removed"
        )
    if not any(any(counts.values()) for counts in done.values()):
        click.echo("nothing changed")


@teams_group.command("list")
@FORMAT
def list_teams(fmt: str) -> None:
    """Every team: its member count, and how many members each LMS and system knows."""
    with checked_database() as db:
        found = TeamService(db).list()
    if fmt == "json":
        click.echo(json.dumps([t.model_dump(mode="json") for t in found], indent=2))
        return
    rows = [
        {
            "team": t.name,
            "members": len(t.members),
            "email": sum(m.email is not None for m in t.members),
            **{c: sum(c in m.lms_ids for m in t.members) for c in LMS_COLUMNS},
            **{c: sum(c in m.logins for m in t.members) for c in LOGIN_COLUMNS},
        }
        for t in found
    ]
    write_rows(rows, ["team", "members", "email", *LMS_COLUMNS, *LOGIN_COLUMNS], "table")


def _ids(found: dict[str, str], known: tuple[str, ...]) -> dict[str, str]:
    """The known systems as columns; any other under `other` (name=id, comma-separated)."""
    other = ",".join(f"{k}={v}" for k, v in sorted(found.items()) if k not in known)
    return {**{k: found[k] for k in known if k in found}, **({"other": other} if other else {})}


def _row(member: Member) -> dict[str, str | None]:
    lms, logins = _ids(member.lms_ids, LMS_COLUMNS), _ids(member.logins, LOGIN_COLUMNS)
    others = ",".join(filter(None, (lms.pop("other", ""), logins.pop("other", ""))))
    return {
        "person": member.person,
        "name": member.name or None,
        "email": member.email,
        **lms,
        **logins,
        "other": others or None,
    }


def _show(team: Team) -> None:
    columns = ["person", "name", "email", *LMS_COLUMNS, *LOGIN_COLUMNS]
    rows = [_row(m) for m in team.members]
    if any(r["other"] for r in rows):
        columns.append("other")
    write_rows(rows, columns, "table")


@teams_group.command("show")
@click.argument("team")
@FORMAT
def show(team: str, fmt: str) -> None:
    """One line per member of TEAM: person, name, email, LMS user ids and logins."""
    with checked_database() as db:
        found = TeamService(db).get(team)
    if found is None:
        raise click.ClickException(f"no team {team!r} (or it has no members)")
    if fmt == "json":
        click.echo(json.dumps(found.model_dump(mode="json"), indent=2))
        return
    _show(found)
