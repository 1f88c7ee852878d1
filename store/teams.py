"""Repository of the team → members map: one row per (team, person), ids elsewhere in `doc`."""

import re
from collections.abc import Iterable
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from core.cadence import Tracker
from core.team import Member, Team, check_person
from store.tables import TeamMemberRow, TeamSettingRow

_SYSTEM = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _member(row: TeamMemberRow) -> Member:
    doc = row.doc if isinstance(row.doc, dict) else {}
    return Member.model_validate(
        {
            "person": row.person,
            "name": row.name,
            "email": row.email,
            "lms_ids": dict(doc.get("lms_ids") or {}),
            "logins": dict(doc.get("logins") or {}),
        }
    )


def _values(member: Member) -> dict[str, Any]:
    """The columns a member's row holds besides its key."""
    return {
        "name": member.name,
        "email": member.email,
        "doc": {"lms_ids": dict(member.lms_ids), "logins": dict(member.logins)},
    }


def replace_team(session: Session, team: Team, now: datetime) -> tuple[int, int, int]:
    """Make the stored team exactly `team`: (added, changed, removed) members. Replacing a team
    with what it already holds writes nothing and answers (0, 0, 0); no members removes it."""
    stmt = select(TeamMemberRow).where(TeamMemberRow.team == team.name)
    stored = {row.person: row for row in session.scalars(stmt)}
    added = changed = 0
    for member in team.members:
        values = _values(member)
        row = stored.pop(member.person, None)
        if row is None:
            session.add(
                TeamMemberRow(team=team.name, person=member.person, updated_at=now, **values)
            )
            added += 1
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            changed += 1
    for row in stored.values():
        session.delete(row)
    session.flush()
    return added, changed, len(stored)


def _teams(rows: Iterable[TeamMemberRow]) -> list[Team]:
    return [
        Team(name=name, members=tuple(_member(row) for row in group))
        for name, group in groupby(rows, key=lambda row: row.team)
    ]


def teams(session: Session) -> list[Team]:
    """Every team with members, by name."""
    stmt = select(TeamMemberRow).order_by(TeamMemberRow.team, TeamMemberRow.person)
    return _teams(session.scalars(stmt))


def team(session: Session, name: str) -> Team | None:
    """One team, or None when it has no members."""
    stmt = select(TeamMemberRow).where(TeamMemberRow.team == name).order_by(TeamMemberRow.person)
    found = _teams(session.scalars(stmt))
    return found[0] if found else None


def member(session: Session, team: str, person: str) -> Member | None:
    """One member of a team, by person id (folded as ids are), or None."""
    try:
        key = check_person(person)
    except ValueError:
        return None
    row = session.get(TeamMemberRow, (team, key))
    return None if row is None else _member(row)


def find(
    session: Session,
    *,
    email: str | None = None,
    lms: tuple[str, str] | None = None,
    login: tuple[str, str] | None = None,
) -> list[tuple[str, Member]]:
    """(team, member) pairs matching every criterion given: an email (any case), an LMS user id
    `(lms, id)` or a login `(system, login)`. At least one criterion is needed."""
    if email is None and lms is None and login is None:
        raise ValueError("find needs an email, an LMS id or a login")
    conditions: list[ColumnElement[bool]] = []
    if email is not None:
        conditions.append(TeamMemberRow.email == email.strip().lower())
    for key, wanted in (("lms_ids", lms), ("logins", login)):
        if wanted is None:
            continue
        system, value = wanted
        if not _SYSTEM.fullmatch(system):
            return []  # no stored member has an id under such a name
        conditions.append(TeamMemberRow.doc[(key, system)].as_string() == value.strip())
    stmt = select(TeamMemberRow).where(*conditions)
    return _pairs(session.scalars(stmt.order_by(TeamMemberRow.team, TeamMemberRow.person)))


def all_members(session: Session) -> list[tuple[str, Member]]:
    """Every (team, member) pair, by team then person."""
    stmt = select(TeamMemberRow).order_by(TeamMemberRow.team, TeamMemberRow.person)
    return _pairs(session.scalars(stmt))


def _pairs(rows: Iterable[TeamMemberRow]) -> list[tuple[str, Member]]:
    return [(row.team, _member(row)) for row in rows]


def set_tracker(session: Session, team: str, tracker: Tracker, now: datetime) -> bool:
    """Record where the team's review-cadence issue goes; True when that changed it."""
    doc = {"tracker": tracker.model_dump(mode="json", exclude_none=True)}
    row = session.get(TeamSettingRow, team)
    if row is None:
        session.add(TeamSettingRow(team=team, doc=doc, updated_at=now))
        session.flush()
        return True
    if row.doc == doc:
        return False
    row.doc, row.updated_at = doc, now
    return True


def trackers(session: Session) -> dict[str, Tracker]:
    """Team → the tracker its review-cadence issue goes to, for every team that set one."""
    found: dict[str, Tracker] = {}
    for row in session.scalars(select(TeamSettingRow).order_by(TeamSettingRow.team)):
        tracker = row.doc.get("tracker") if isinstance(row.doc, dict) else None
        if isinstance(tracker, dict):
            found[row.team] = Tracker.model_validate(tracker)
    return found
