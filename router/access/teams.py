"""The team → members map as the API and the CLI change it: import a file, replace a team.

Each change is one transaction with a `team.imported` audit entry per team that changed (its
added, changed and removed counts), and a `team.tracker` entry when a file gives a team a new
review-cadence tracker. An id (email, LMS user id, login) names one person across
every team, since completion coming back from an LMS is matched to a learner by it.
"""

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.access import Permission, Principal
from core.base import utcnow
from core.cadence import Tracker
from core.errors import ConflictError, ForbiddenError
from core.team import Member, Team, TeamFileError, identities, read_team_file
from store import audit, teams
from store.engine import Database

Counts = dict[str, int]


def _counts(added: int, changed: int, removed: int) -> Counts:
    return {"added": added, "changed": changed, "removed": removed}


def _check_operator(actor: Principal) -> None:
    if not actor.can(Permission.OPERATE):
        raise ForbiddenError(f"{actor.id} may not change the team map")


def _read(source: str | Path, filename: str) -> str:
    if isinstance(source, str):
        return source
    data = source.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TeamFileError([f"{filename}:{line}: not UTF-8 text"]) from exc


def _shared_ids(session: Session, new: Sequence[Team]) -> list[tuple[Team, Member, str]]:
    """Each (team, member, problem) where a new member's id already names another person in a
    team this change leaves as it is, or another member of the new teams."""
    replaced = {t.name for t in new}
    holders: dict[tuple[str, str], tuple[str, str]] = {}
    for name, member in teams.all_members(session):
        if name not in replaced:
            for key in identities(member):
                holders.setdefault(key, (member.person, name))
    problems = []
    for team in new:
        for member in team.members:
            for key in identities(member):
                person, where = holders.setdefault(key, (member.person, team.name))
                if person != member.person:
                    what, value = key
                    problems.append(
                        (team, member, f"{what} {value!r} is also given to {person!r} in {where!r}")
                    )
    return problems


class TeamService:
    """Team map operations over the store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def import_file(self, source: str | Path, filename: str, actor: Principal) -> dict[str, Counts]:
        """Replace every team the file lists (a path, or the file's text) by its members, all in
        one transaction; teams it does not list stay. Per team: added, changed, removed. Raises
        TeamFileError (`FILE:LINE: …` each) and writes nothing when anything is wrong."""
        _check_operator(actor)
        parsed = read_team_file(_read(source, filename), filename)
        details = {"via": "file", "file": filename}
        return self._replace(parsed.teams, actor, details, parsed.lines, parsed.trackers)

    def put(self, name: str, members: Iterable[Member], actor: Principal) -> Counts:
        """Make team `name` exactly `members` (none removes the team): added, changed, removed.
        Raises pydantic's ValidationError for a bad name or a person listed twice, and
        ConflictError when an id of a member already names another person."""
        _check_operator(actor)
        team = Team(name=name, members=tuple(members))
        return self._replace([team], actor, {"via": "api"}, None)[team.name]

    def get(self, name: str) -> Team | None:
        """One team, or None when no team of that name has members."""
        with self.db.transaction() as session:
            return teams.team(session, name)

    def _replace(
        self,
        new: list[Team],
        actor: Principal,
        details: dict[str, str],
        lines: dict[tuple[str, str], int] | None,
        trackers: Mapping[str, Tracker] | None = None,
    ) -> dict[str, Counts]:
        done: dict[str, Counts] = {}
        try:
            with self.db.transaction() as session:
                shared = _shared_ids(session, new)
                if shared and lines is not None:
                    file = details["file"]
                    raise TeamFileError(
                        [
                            f"{file}:{lines[(t.name, m.person)]}: team {t.name!r}, person "
                            f"{m.person!r}: {problem}"
                            for t, m, problem in shared
                        ]
                    )
                if shared:
                    raise ConflictError(
                        "; ".join(f"person {m.person!r}: {problem}" for _, m, problem in shared)
                    )
                now = utcnow()
                for team in new:
                    counts = _counts(*teams.replace_team(session, team, now))
                    done[team.name] = counts
                    if any(counts.values()):
                        subject = f"team:{team.name}"
                        audit.record_by(
                            session, actor, "team.imported", subject, {**counts, **details}, now
                        )
                tracked = (trackers or {}).items()
                for name, tracker in tracked:
                    if teams.set_tracker(session, name, tracker, now):
                        where = tracker.model_dump(mode="json", exclude_none=True)
                        audit.record_by(session, actor, "team.tracker", f"team:{name}", where, now)
        except IntegrityError as exc:  # another change to the same team committed meanwhile
            raise ConflictError("the team changed at the same time; try again") from exc
        return done

    # Last in the class: its name would shadow the builtin in the annotations below it.
    def list(self) -> list[Team]:
        """Every team with members, by name."""
        with self.db.transaction() as session:
            return teams.teams(session)
