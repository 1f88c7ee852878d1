"""Teams and their members: who a team's training goes to, and how each LMS and work system
knows each person. Read from a YAML or CSV file that is checked whole, every problem at its line.

YAML (any file not named `*.csv`)::

    format: cairn.teams/1            # optional
    teams:
      payments:
        - person: dana@example.com   # optional when `email` is given (then the email is the id)
          name: Dana Hill
          email: dana@example.com
          moodle: 17                 # LMS user ids: moodle, canvas, xapi (the account name)
          canvas: 4021
          xapi: dana-h
          github: dana-h             # logins: github, jira (the account id)
          jira: 5b10ac8d82e05b22cc7d4ef5
          lms: {totara: "88"}        # any other LMS, and `logins:` for any other system
      checkout: []                   # a team with no members (an import empties it)
      platform:                      # a mapping gives team settings beside the members:
        tracker: {jira: PLAT}        #   where its review-cadence issue goes
        members: []                  #   (or `{github: owner/repo}`)

A team's `tracker` is kept until an import gives another; CSV files carry no team settings.

CSV: a header naming some of `team,person,name,email,moodle,canvas,xapi,github,jira` (`team`, and
`person` or `email`, are required), then one row per (team, member); an empty cell is no value.
"""

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from core.access import MAX_PERSON, normalise_person
from core.base import CoreModel, Name
from core.cadence import Tracker
from core.errors import PayloadError

FORMAT = "cairn.teams/1"
LMS_COLUMNS = ("moodle", "canvas", "xapi")
"""Flat file columns that are LMS user ids (`lms_ids`): xapi is the xAPI `account.name`."""
LOGIN_COLUMNS = ("github", "jira")
"""Flat file columns that are logins in work systems (`logins`)."""
CSV_COLUMNS = ("team", "person", "name", "email", *LMS_COLUMNS, *LOGIN_COLUMNS)
MEMBER_FIELDS = ("person", "name", "email", *LMS_COLUMNS, *LOGIN_COLUMNS, "lms", "logins")
MAX_PROBLEMS = 200
"""A file with more problems than this lists the first ones and says how many more."""

_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TOP_LABEL = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_LOGIN = re.compile(r"^\w[\w.+-]*$")
_SYSTEM = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _encodable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate code point, which is not text") from None
    return value


def check_email(value: str) -> str:
    """An email address, lower-cased, or ValueError: `local@domain.tld` with an ASCII local part
    and a domain of DNS labels (internationalised domains are checked in their IDNA form)."""
    text = _encodable(value).strip().lower()
    local, at, domain = text.rpartition("@")
    problem = f"{_shown(value)} is not an email address (name@domain.tld)"
    if not at or len(text) > 254 or len(local) > 64 or not _LOCAL.fullmatch(local):
        raise ValueError(problem)
    try:
        labels = domain.encode("idna").decode("ascii").split(".")
    except UnicodeError:
        raise ValueError(problem) from None
    if len(labels) < 2 or not all(map(_LABEL.fullmatch, labels[:-1])):
        raise ValueError(problem)
    if not _TOP_LABEL.fullmatch(labels[-1]):
        raise ValueError(problem)
    return text


def check_person(value: str) -> str:
    """A person's stable id, or ValueError: a lower-cased email, or a login (letters, digits,
    `.`, `_`, `+`, `-`), folded for case and width as the SSO proxy's user names are."""
    try:
        folded = normalise_person(_encodable(value))
    except ValueError:
        raise ValueError(
            f"a person is a non-empty id of at most {MAX_PERSON} characters, without control "
            "or invisible characters"
        ) from None
    if "@" in folded:
        return check_email(folded)
    if not _LOGIN.fullmatch(folded):
        raise ValueError(
            f"{_shown(folded)}: a person is an email or a login (letters, digits, '.', '_', "
            "'+', '-')"
        )
    return folded


def _system(value: str) -> str:
    if not _SYSTEM.fullmatch(value):
        raise ValueError(
            f"{_shown(value)}: a system name is lower-case letters, digits, '_' or '-', "
            "starting with a letter (at most 40)"
        )
    return value


Person = Annotated[Name, AfterValidator(check_person)]
"""A member's stable id: a lower-cased email or a login."""
Email = Annotated[str, AfterValidator(check_email)]
"""An email address of a plausible shape, lower-cased."""
System = Annotated[str, AfterValidator(_system)]
"""An LMS or work system's name: `moodle`, `canvas`, `xapi`, `github`, `jira`, …"""
Identifier = Annotated[Name, AfterValidator(_encodable)]
"""A user id or login as that system spells it."""
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"),
    AfterValidator(_encodable),
]


class Member(CoreModel):
    """One person in a team: the stable id, how to show and mail them, and their ids elsewhere."""

    person: Person
    name: DisplayName = ""
    email: Email | None = None
    lms_ids: dict[System, Identifier] = Field(default_factory=dict, max_length=50)
    """LMS name → that LMS's user id, e.g. {"moodle": "17", "canvas": "4021", "xapi": "dana-h"}."""
    logins: dict[System, Identifier] = Field(default_factory=dict, max_length=50)
    """System → login, e.g. {"github": "dana-h", "jira": "5b10ac8d82e05b22cc7d4ef5"}."""


class Team(CoreModel):
    """A team and its members, in person order; each person once."""

    name: Annotated[Name, AfterValidator(_encodable)]
    members: tuple[Member, ...]

    @field_validator("members")
    @classmethod
    def _each_person_once(cls, members: tuple[Member, ...]) -> tuple[Member, ...]:
        seen: set[str] = set()
        for member in members:
            if member.person in seen:
                raise ValueError(f"person {member.person!r} is listed twice")
            seen.add(member.person)
        return tuple(sorted(members, key=lambda m: m.person))

    def member(self, person: str) -> Member | None:
        """The member with this person id (folded as ids are), if any."""
        try:
            wanted = check_person(person)
        except ValueError:
            return None
        return next((m for m in self.members if m.person == wanted), None)


class TeamFileError(PayloadError):
    """A teams file that cannot be imported; `errors` lists each problem as `FILE:LINE: …`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class TeamFile:
    """A parsed teams file: its teams in file order, and the line of each (team, person)."""

    teams: list[Team]
    lines: dict[tuple[str, str], int]
    trackers: dict[str, Tracker] = field(default_factory=dict)
    """Team → where its review-cadence issue is opened, for the teams the file gives one."""


def parse_teams(text: str, filename: str) -> list[Team]:
    """Every team of a YAML or CSV teams file (CSV when `filename` ends in `.csv`), or
    TeamFileError listing every problem: the file is taken whole or not at all."""
    return read_team_file(text, filename).teams


def read_team_file(text: str, filename: str) -> TeamFile:
    """`parse_teams`, keeping the line each member was read from."""
    problems = _Problems(filename)
    try:
        drafts = (
            _from_csv(text, problems)
            if filename.lower().endswith(".csv")
            else _from_yaml(text, problems)
        )
        found = _build(drafts, problems)
    except RecursionError:
        problems.add(1, "nested too deeply to be a teams file")
        found = None
    if problems.found or found is None:
        raise TeamFileError(problems.listed())
    return found


# --- reading: each format gives drafts with the line of every value --------------------------


@dataclass(slots=True)
class _Draft:
    """One member as read, before validation: each value with its line."""

    line: int
    values: dict[str, tuple[str, int]] = field(default_factory=dict)
    lms: dict[str, tuple[str, int]] = field(default_factory=dict)
    logins: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(slots=True)
class _TeamDraft:
    name: str
    line: int
    members: list[_Draft] = field(default_factory=list)
    tracker: dict[str, str] | None = None
    tracker_line: int = 0


class _Problems:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.found: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.found.append((line, message))

    def listed(self) -> list[str]:
        found = sorted(self.found, key=lambda problem: problem[0])
        shown = [f"{self.filename}:{line}: {message}" for line, message in found]
        if len(shown) > MAX_PROBLEMS:
            rest = len(shown) - MAX_PROBLEMS
            line = found[MAX_PROBLEMS][0]
            shown = [*shown[:MAX_PROBLEMS], f"{self.filename}:{line}: and {rest} more problems"]
        return shown


_NULL = "tag:yaml.org,2002:null"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node) -> str | None:
    """A scalar's text exactly as written (so `0017` stays `0017`); None for null."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
        return None
    return str(node.value)


def _pairs(node: yaml.MappingNode, problems: _Problems) -> Iterator[tuple[str, yaml.Node, int]]:
    """(key, value node, key line) of a mapping; a key that is not text or repeats is named."""
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        line = _line(key_node)
        if key_node.tag == "tag:yaml.org,2002:merge":
            problems.add(line, "merge keys (<<) are not supported: write each field out")
        elif key is None:
            problems.add(line, "a key must be text")
        elif key in seen:
            problems.add(line, f"{key!r} repeats the key of line {seen[key]}")
        else:
            seen[key] = line
            yield key, value_node, line


def _from_yaml(text: str, problems: _Problems) -> list[_TeamDraft]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.add(mark.line + 1 if mark else 1, f"invalid YAML: {exc.problem or exc}")
        return []
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else 1
        problems.add(line, f"invalid YAML: {exc.reason}")
        return []
    except yaml.YAMLError as exc:
        problems.add(1, f"invalid YAML: {type(exc).__name__}")
        return []
    if not isinstance(root, yaml.MappingNode):
        where = 1 if root is None else _line(root)
        problems.add(where, "expected a mapping with `teams:` (and optionally `format:`)")
        return []
    teams_node: yaml.Node | None = None
    for key, value, line in _pairs(root, problems):
        if key == "format":
            if _scalar(value) != FORMAT:
                problems.add(_line(value), f"format must be {FORMAT!r}")
        elif key == "teams":
            teams_node = value
        else:
            problems.add(line, f"unknown key {key!r} (expected `format` and `teams`)")
    if teams_node is None:
        problems.add(_line(root), "no `teams:` mapping")
        return []
    if not isinstance(teams_node, yaml.MappingNode):
        problems.add(_line(teams_node), "`teams` must map each team's name to its members")
        return []
    drafts = []
    for name, members, line in _pairs(teams_node, problems):
        draft = _TeamDraft(name, line)
        drafts.append(draft)
        if isinstance(members, yaml.MappingNode):
            members = _yaml_settings(name, members, draft, problems)
        if not isinstance(members, yaml.SequenceNode):
            problems.add(
                _line(members),
                f"team {name!r}: expected a list of members (`[]` for a team with none)",
            )
            continue
        for item in members.value:
            member = _yaml_member(item, problems)
            if member is not None:
                draft.members.append(member)
    return drafts


def _yaml_settings(
    name: str, node: yaml.MappingNode, draft: _TeamDraft, problems: _Problems
) -> yaml.Node:
    """A team given as a mapping: its `tracker` into the draft; its `members` node, which
    must be there (an import replaces the members: leaving them out must not empty a team)."""
    members: yaml.Node | None = None
    for key, value, line in _pairs(node, problems):
        if key == "members":
            members = value
        elif key == "tracker":
            draft.tracker_line = _line(value)
            if not isinstance(value, yaml.MappingNode):
                problems.add(
                    _line(value),
                    f"team {name!r}: `tracker` is `{{jira: KEY}}` or `{{github: owner/repo}}`",
                )
                continue
            draft.tracker = {k: _scalar(v) or "" for k, v, _ in _pairs(value, problems)}
        else:
            problems.add(
                line, f"team {name!r}: unknown key {key!r} (expected `members`, `tracker`)"
            )
    if members is None:
        problems.add(_line(node), f"team {name!r}: `members:` is needed (`[]` for none)")
        return yaml.SequenceNode(tag="tag:yaml.org,2002:seq", value=[], start_mark=node.start_mark)
    return members


def _yaml_member(node: yaml.Node, problems: _Problems) -> _Draft | None:
    if not isinstance(node, yaml.MappingNode):
        problems.add(_line(node), "a member is a mapping (person:, name:, email:, …)")
        return None
    draft = _Draft(_line(node))
    for key, value, line in _pairs(node, problems):
        if key in ("lms", "logins"):
            _yaml_systems(key, value, draft, problems)
        elif key not in MEMBER_FIELDS:
            problems.add(line, f"unknown field {key!r} (expected {', '.join(MEMBER_FIELDS)})")
        elif isinstance(value, yaml.ScalarNode):
            text = _scalar(value)
            if text is not None:
                _put(draft, key, text, _line(value), problems)
        else:
            problems.add(_line(value), f"{key}: expected text, not a list or mapping")
    return draft


def _yaml_systems(key: str, node: yaml.Node, draft: _Draft, problems: _Problems) -> None:
    if not isinstance(node, yaml.MappingNode):
        problems.add(_line(node), f"{key}: expected a mapping of system name to id")
        return
    for system, value, _ in _pairs(node, problems):
        text = _scalar(value) if isinstance(value, yaml.ScalarNode) else None
        if text is None:
            problems.add(_line(value), f"{key}.{system}: expected text")
            continue
        target = draft.lms if key == "lms" else draft.logins
        if system in target:
            problems.add(_line(value), f"{system} is given twice (line {target[system][1]})")
        else:
            target[system] = (text, _line(value))


def _put(draft: _Draft, column: str, text: str, line: int, problems: _Problems) -> None:
    """A flat field or column into its place: the member's own fields, an LMS id or a login."""
    target = (
        draft.lms
        if column in LMS_COLUMNS
        else draft.logins
        if column in LOGIN_COLUMNS
        else draft.values
    )
    if column in target:
        problems.add(line, f"{column} is given twice (line {target[column][1]})")
    else:
        target[column] = (text, line)


def _from_csv(text: str, problems: _Problems) -> list[_TeamDraft]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header: list[str] | None = None
    drafts: dict[str, _TeamDraft] = {}
    line = 1
    try:
        for row in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = _csv_header(row, start, problems)
                if header is None:
                    return []
                continue
            _csv_row(header, row, start, drafts, problems)
    except csv.Error as exc:
        problems.add(line, f"invalid CSV: {exc}")
        return []
    if header is None:
        problems.add(1, f"empty file: expected a header naming {','.join(CSV_COLUMNS)}")
    return list(drafts.values())


def _csv_header(row: list[str], line: int, problems: _Problems) -> list[str] | None:
    header = [cell.strip().lower() for cell in row]
    bad = False
    for number, column in enumerate(header, start=1):
        if column not in CSV_COLUMNS:
            what = f"unknown column {column!r}" if column else f"column {number} has no name"
            problems.add(line, f"{what} (expected {','.join(CSV_COLUMNS)})")
            bad = True
        elif header.index(column) != number - 1:
            problems.add(line, f"column {column!r} appears twice")
            bad = True
    if "team" not in header:
        problems.add(line, "the header needs a `team` column")
        bad = True
    if "person" not in header and "email" not in header:
        problems.add(line, "the header needs a `person` or an `email` column")
        bad = True
    return None if bad else header


def _csv_row(
    header: list[str],
    row: list[str],
    line: int,
    drafts: dict[str, _TeamDraft],
    problems: _Problems,
) -> None:
    if len(row) != len(header):
        problems.add(line, f"the row has {len(row)} fields, the header {len(header)}")
        return
    cells = {column: cell.strip() for column, cell in zip(header, row, strict=True)}
    team = cells.pop("team")
    if not team:
        problems.add(line, "team: no team named")
        return
    draft = _Draft(line)
    for column, cell in cells.items():
        if cell:
            _put(draft, column, cell, line, problems)
    drafts.setdefault(team, _TeamDraft(team, line)).members.append(draft)


# --- checking: every member, each person once per team, one person per id ---------------------

_TEAM_NAME: TypeAdapter[str] = TypeAdapter(Annotated[Name, AfterValidator(_encodable)])
_FRIENDLY = {
    "string_pattern_mismatch": "must not hold control characters (line breaks, tabs)",
    "string_too_long": "is too long",
    "string_too_short": "is empty",
    "string_unicode": "is not text (it holds a lone surrogate code point)",
}


def _message(error: Any) -> str:
    if error["type"] in _FRIENDLY:
        return str(_FRIENDLY[error["type"]])
    return str(error["msg"]).removeprefix("Value error, ")


def _member(draft: _Draft, team: str, problems: _Problems) -> Member | None:
    values = {key: text for key, (text, _) in draft.values.items()}
    lines: dict[tuple[str, ...], int] = {(k,): ln for k, (_, ln) in draft.values.items()}
    if "person" not in values:
        if "email" not in values:
            problems.add(draft.line, f"team {team!r}: a member needs a person or an email")
            return None
        values["person"] = values["email"]
        lines[("person",)] = lines[("email",)]
    data: dict[str, Any] = {**values}
    for key, found in (("lms_ids", draft.lms), ("logins", draft.logins)):
        data[key] = {system: text for system, (text, _) in found.items()}
        lines.update({(key, system): ln for system, (_, ln) in found.items()})
    derived = "person" not in draft.values
    try:
        return Member.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        bad = {str(error["loc"][0]) for error in errors}
        for error in errors:
            loc = tuple(str(part) for part in error["loc"])
            if derived and loc[0] == "person" and "email" in bad:
                continue  # the person is the email: one problem, said once
            where = loc[1] if loc[0] in ("lms_ids", "logins") and len(loc) > 1 else loc[0]
            line = lines.get(loc[:2], lines.get(loc[:1], draft.line))
            who = _shown(values["person"])
            problems.add(line, f"team {team!r}, person {who}: {where}: {_message(error)}")
        return None


def identities(member: Member) -> Iterator[tuple[str, str]]:
    """(what, value) for each id that names exactly one person: email, LMS ids, logins."""
    if member.email is not None:
        yield "email", member.email
    for system, value in member.lms_ids.items():
        yield f"{system} id", value
    for system, value in member.logins.items():
        yield f"{system} login", value


def _build(drafts: list[_TeamDraft], problems: _Problems) -> TeamFile:
    teams: list[Team] = []
    lines: dict[tuple[str, str], int] = {}
    trackers: dict[str, Tracker] = {}
    named: dict[str, int] = {}
    holder: dict[tuple[str, str], tuple[str, int]] = {}
    held: dict[tuple[str, str], tuple[str, int]] = {}
    for draft in drafts:
        try:
            name = _TEAM_NAME.validate_python(draft.name)
        except ValidationError as exc:
            message = _message(exc.errors(include_url=False, include_input=False)[0])
            problems.add(draft.line, f"team name {_shown(draft.name)}: {message}")
            continue
        if name in named:
            problems.add(draft.line, f"team {name!r} is listed twice (line {named[name]})")
            continue
        named[name] = draft.line
        members: dict[str, Member] = {}
        for entry in draft.members:
            member = _member(entry, name, problems)
            if member is None:
                continue
            if member.person in members:
                first = lines[(name, member.person)]
                problems.add(
                    entry.line,
                    f"team {name!r}: person {member.person!r} is listed twice (line {first})",
                )
                continue
            members[member.person] = member
            lines[(name, member.person)] = entry.line
            for what, value in identities(member):
                _one_person_per_id(member.person, what, value, entry.line, holder, held, problems)
        tracker = None
        if draft.tracker is not None:
            try:
                tracker = Tracker.model_validate(draft.tracker)
            except ValidationError as exc:
                error = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(part) for part in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.add(
                    draft.tracker_line,
                    f"team {name!r}: tracker{'.' + where if where else ''}: {message}",
                )
        teams.append(Team(name=name, members=tuple(members.values())))
        if tracker is not None:
            trackers[name] = tracker
    return TeamFile(teams, lines, trackers)


def _one_person_per_id(
    person: str,
    what: str,
    value: str,
    line: int,
    holder: dict[tuple[str, str], tuple[str, int]],
    held: dict[tuple[str, str], tuple[str, int]],
    problems: _Problems,
) -> None:
    """An id names one person, and a person in several teams has the same ids in each."""
    owner = holder.setdefault((what, value), (person, line))
    if owner[0] != person:
        problems.add(
            line,
            f"{what} {_shown(value)} of {person!r} is also given to {owner[0]!r} (line {owner[1]})",
        )
    own = held.setdefault((person, what), (value, line))
    if own[0] != value:
        problems.add(
            line,
            f"{person!r} has {what} {_shown(value)} here and {_shown(own[0])} on line {own[1]}",
        )
