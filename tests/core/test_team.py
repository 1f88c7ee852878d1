"""The team map's models and its file parser: YAML and CSV, every problem at its line."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.team import (
    MAX_PROBLEMS,
    Member,
    Team,
    TeamFileError,
    check_email,
    check_person,
    parse_teams,
    read_team_file,
)

YAML = """\
format: cairn.teams/1
teams:
  payments:
    - person: Dana@Example.com
      name: Dana Hill
      email: dana@example.com
      moodle: 0017
      canvas: 4021
      xapi: dana-h
      github: dana-h
      jira: 5b10ac8d82e05b22cc7d4ef5
    - email: Lee@Example.com
      lms: {totara: "88"}
      logins: {gitlab: lee}
  checkout: []
"""
CSV = """\
team,person,name,email,moodle,canvas,xapi,github,jira
payments,dana@example.com,Dana Hill,dana@example.com,0017,4021,dana-h,dana-h,\
5b10ac8d82e05b22cc7d4ef5
payments,,,lee@example.com,,,,,
checkout,sam,"Sam, Jr.",,,,,sam-gh,
"""
DANA = Member(
    person="dana@example.com",
    name="Dana Hill",
    email="dana@example.com",
    lms_ids={"moodle": "0017", "canvas": "4021", "xapi": "dana-h"},
    logins={"github": "dana-h", "jira": "5b10ac8d82e05b22cc7d4ef5"},
)


def _errors(text: str, filename: str = "teams.yaml") -> list[str]:
    with pytest.raises(TeamFileError) as caught:
        parse_teams(text, filename)
    return caught.value.errors


# --- the models ---------------------------------------------------------------------------------


def test_a_person_is_a_folded_email_or_login() -> None:
    assert check_person(" Dana@Example.COM ") == "dana@example.com"
    assert check_person("Dana.H") == "dana.h"
    # Full-width letters fold as the SSO proxy's user names do.
    assert check_person("\uff24\uff21\uff2e\uff21") == "dana"
    for bad in ("", "dana h", "dana@", "a\u200bb", "x" * 191, "dana/h"):
        with pytest.raises(ValueError):
            check_person(bad)


@pytest.mark.parametrize(
    "good", ["dana@example.com", "d.h+lms@mail.example.co.uk", "x@bücher.de", "a@xn--bcher-kva.de"]
)
def test_plausible_emails_pass(good: str) -> None:
    assert check_email(good) == good.lower()


@pytest.mark.parametrize(
    "bad",
    [
        "dana",
        "dana@",
        "@example.com",
        "dana@example",
        "dana@@example.com",
        "da..na@example.com",
        ".dana@example.com",
        "dana@-example.com",
        "dana@example.c0m",
        "dana @example.com",
        "dana@exa_mple.com",
        "d" * 65 + "@example.com",
        "dana@" + "a" * 250 + ".com",
    ],
)
def test_implausible_emails_fail(bad: str) -> None:
    with pytest.raises(ValueError, match="not an email address"):
        check_email(bad)


def test_members_are_strict_and_frozen() -> None:
    with pytest.raises(ValidationError):
        Member.model_validate({"person": "dana", "lms_ids": {"moodle": 17}})
    with pytest.raises(ValidationError):
        Member.model_validate({"person": "dana", "slack": "x"})
    with pytest.raises(ValidationError):
        Member.model_validate({"person": "dana", "lms_ids": {"Moodle": "17"}})
    with pytest.raises(ValidationError):
        DANA.name = "x"  # type: ignore[misc]


def test_a_team_lists_each_person_once_in_person_order() -> None:
    team = Team(name="payments", members=(DANA, Member(person="ann")))
    assert [m.person for m in team.members] == ["ann", "dana@example.com"]
    assert team.member("DANA@example.com") == DANA and team.member("nobody") is None
    with pytest.raises(ValidationError, match="listed twice"):
        Team(name="payments", members=(DANA, Member(person="Dana@Example.com")))


# --- the file formats -----------------------------------------------------------------------------


def test_yaml_file() -> None:
    payments, checkout = parse_teams(YAML, "teams.yaml")
    assert payments == Team(
        name="payments",
        members=(
            DANA,
            Member(
                person="lee@example.com",
                email="lee@example.com",
                lms_ids={"totara": "88"},
                logins={"gitlab": "lee"},
            ),
        ),
    )
    assert checkout == Team(name="checkout", members=())


def test_csv_file_gives_the_same_members() -> None:
    payments, checkout = parse_teams(CSV, "teams.CSV")
    assert payments.members[0] == DANA
    assert payments.members[1] == Member(person="lee@example.com", email="lee@example.com")
    assert checkout.members == (Member(person="sam", name="Sam, Jr.", logins={"github": "sam-gh"}),)


def test_csv_header_in_any_order_and_case_with_a_bom_and_blank_lines() -> None:
    text = "\ufeffEmail , TEAM,moodle\r\n\r\nann@example.com,ops,5\r\n,,\r\n"
    [ops] = parse_teams(text, "t.csv")
    assert ops.members == (
        Member(person="ann@example.com", email="ann@example.com", lms_ids={"moodle": "5"}),
    )


def test_lines_of_members_are_kept() -> None:
    assert read_team_file(YAML, "t.yaml").lines == {
        ("payments", "dana@example.com"): 4,
        ("payments", "lee@example.com"): 12,
    }
    assert read_team_file(CSV, "t.csv").lines[("checkout", "sam")] == 4


def test_yaml_values_are_taken_as_written() -> None:
    text = "teams:\n  t:\n    - {person: 'no', moodle: 1e3, canvas: 0x1F, jira: 12_000}\n"
    [team] = parse_teams(text, "t.yml")
    assert team.members[0].lms_ids == {"moodle": "1e3", "canvas": "0x1F"}
    assert team.members[0].person == "no" and team.members[0].logins == {"jira": "12_000"}


def test_an_empty_teams_mapping_is_no_teams() -> None:
    assert parse_teams("teams: {}\n", "t.yaml") == []
    assert parse_teams("teams: {}\n", "t.json") == []


# --- every problem at its line ------------------------------------------------------------------

YAML_CASES = [
    ("teams:\n  a: [\n", "t.yaml:3: invalid YAML"),
    ("", "t.yaml:1: expected a mapping with `teams:`"),
    ("- 1\n", "t.yaml:1: expected a mapping with `teams:`"),
    ("format: cairn.teams/2\nteams: {}\n", "t.yaml:1: format must be 'cairn.teams/1'"),
    ("format: x\n", "t.yaml:1: no `teams:` mapping"),
    ("teams: {}\nmembers: 1\n", "t.yaml:2: unknown key 'members'"),
    ("teams: {}\nteams: {}\n", "t.yaml:2: 'teams' repeats the key of line 1"),
    ("teams:\n  - payments\n", "t.yaml:2: `teams` must map each team's name to its members"),
    ("teams:\n  a:\n", "t.yaml:2: team 'a': expected a list of members"),
    ("teams:\n  a: []\n  a: []\n", "t.yaml:3: 'a' repeats the key of line 2"),
    ("teams:\n  ' ': []\n", "t.yaml:2: team name ' ': is empty"),
    ("teams:\n  a:\n    - dana\n", "t.yaml:3: a member is a mapping"),
    ("teams:\n  a:\n    - name: Dana\n", "t.yaml:3: team 'a': a member needs a person or an email"),
    (
        "teams:\n  a:\n    - person: dana\n      slack: dh\n",
        "t.yaml:4: unknown field 'slack' (expected person, name, email, moodle, canvas, xapi, "
        "github, jira, lms, logins)",
    ),
    (
        "teams:\n  a:\n    - person: dana\n      person: lee\n",
        "t.yaml:4: 'person' repeats the key of line 3",
    ),
    (
        "teams:\n  a:\n    - person: dana\n\n      email: dana@\n",
        "t.yaml:5: team 'a', person 'dana': email: 'dana@' is not an email address",
    ),
    (
        "teams:\n  a:\n    - person: dana h\n",
        "t.yaml:3: team 'a', person 'dana h': person: 'dana h': a person is an email or a login",
    ),
    (
        "teams:\n  a:\n    - person: dana\n      moodle: [17]\n",
        "t.yaml:4: moodle: expected text, not a list or mapping",
    ),
    (
        "teams:\n  a:\n    - person: dana\n      lms: {Moodle: '1'}\n",
        "t.yaml:4: team 'a', person 'dana': Moodle: 'Moodle': a system name is lower-case",
    ),
    (
        "teams:\n  a:\n    - person: dana\n      moodle: 1\n      lms:\n        moodle: 2\n",
        "t.yaml:6: moodle is given twice (line 4)",
    ),
    ("teams:\n  a:\n    - person: dana\n      lms: 5\n", "t.yaml:4: lms: expected a mapping"),
    (
        "teams:\n  a:\n    - person: dana\n      name: " + "n" * 201 + "\n",
        "t.yaml:4: team 'a', person 'dana': name: is too long",
    ),
    (
        "teams:\n  a:\n    - person: dana\n      moodle: " + "9" * 5000 + "\n",
        "t.yaml:4: team 'a', person 'dana': moodle: is too long",
    ),
    (
        "teams:\n  a:\n    - person: dana\n    - person: DANA\n",
        "t.yaml:4: team 'a': person 'dana' is listed twice (line 3)",
    ),
    (
        "teams:\n  a:\n    - {person: dana, moodle: '7'}\n  b:\n    - {person: lee, moodle: '7'}\n",
        "t.yaml:5: moodle id '7' of 'lee' is also given to 'dana' (line 3)",
    ),
    (
        "teams:\n  a:\n    - {person: dana, email: d@x.io}\n  b:\n    - {person: dana, "
        "email: e@x.io}\n",
        "t.yaml:5: 'dana' has email 'e@x.io' here and 'd@x.io' on line 3",
    ),
    (
        "base: &m {person: dana}\nteams:\n  a:\n    - <<: *m\n",
        "t.yaml:4: merge keys (<<) are not supported",
    ),
    ("teams:\n  a: [\x00]\n", "t.yaml:2: invalid YAML"),
    ("[" * 20_000, "t.yaml:1: nested too deeply to be a teams file"),
]


@pytest.mark.parametrize(("text", "expected"), YAML_CASES)
def test_yaml_problem_at_its_line(text: str, expected: str) -> None:
    errors = _errors(text, "t.yaml")
    assert any(e.startswith(expected) for e in errors), errors


CSV_CASES = [
    ("", "t.csv:1: empty file: expected a header naming team,person,name,email,"),
    ("team,person,slack\n", "t.csv:1: unknown column 'slack' (expected team,person,"),
    ("team,person,\n", "t.csv:1: column 3 has no name"),
    ("team,person,Person\n", "t.csv:1: column 'person' appears twice"),
    ("person,email\n", "t.csv:1: the header needs a `team` column"),
    ("team,name\n", "t.csv:1: the header needs a `person` or an `email` column"),
    ("team,person\na,dana,x\n", "t.csv:2: the row has 3 fields, the header 2"),
    ("team,person\n,dana\n", "t.csv:2: team: no team named"),
    ("team,person,name\na,,Dana\n", "t.csv:2: team 'a': a member needs a person or an email"),
    (
        "team,person,email\n\na,dana,dana@example\n",
        "t.csv:3: team 'a', person 'dana': email: 'dana@example' is not an email address",
    ),
    ("team,person\na,dana\nb,lee\na,Dana\n", "t.csv:4: team 'a': person 'dana' is listed twice"),
    (
        'team,person,name\na,dana,"two\nlines"\nb,"l\nee",x\n',
        "t.csv:4: team 'b', person 'l\\nee': person: must not hold control characters",
    ),
    ("team,person,github\na,dana,dh\nb,lee,dh\n", "t.csv:3: github login 'dh' of 'lee' is also"),
    ("team,person\na," + "x" * 200_000 + "\n", "t.csv:2: invalid CSV: field larger than"),
    ("team,person\n\ud800,dana\n", "t.csv:2: team name '\\ud800': is not text"),
]


@pytest.mark.parametrize(("text", "expected"), CSV_CASES)
def test_csv_problem_at_its_line(text: str, expected: str) -> None:
    errors = _errors(text, "t.csv")
    assert any(e.startswith(expected) for e in errors), errors


def test_every_problem_is_reported_in_line_order() -> None:
    text = "team,person,email\na,dana,bad\nb,,\na,dana@,\nc,ok,ok@example.com\n"
    assert _errors(text, "t.csv") == [
        "t.csv:2: team 'a', person 'dana': email: 'bad' is not an email address (name@domain.tld)",
        "t.csv:3: team 'b': a member needs a person or an email",
        "t.csv:4: team 'a', person 'dana@': person: 'dana@' is not an email address "
        "(name@domain.tld)",
    ]


def test_a_file_full_of_problems_lists_a_bounded_number() -> None:
    text = "team,person\n" + "a,bad person\n" * (MAX_PROBLEMS + 50)
    errors = _errors(text, "t.csv")
    assert len(errors) == MAX_PROBLEMS + 1
    assert errors[-1] == f"t.csv:{MAX_PROBLEMS + 2}: and 50 more problems"


# --- no text crashes the parser -------------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "teams:",
        "\n",
        "  ",
        "- ",
        "person: ",
        "email: ",
        "moodle: ",
        "lms: ",
        "{",
        "}",
        "[",
        "]",
        ",",
        '"',
        "'",
        "&a ",
        "*a",
        "<<: ",
        "!!int ",
        "9" * 5000,
        "dana",
        "@",
        ".",
        "team,person,email",
        "\ufeff",
        "\ud800",
        "\x00",
        "\t",
        "#",
        "~",
    ]
)
TEXTS = st.one_of(st.text(max_size=400), st.lists(_PIECES, max_size=60).map("".join))


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=TEXTS, filename=st.sampled_from(["t.yaml", "t.csv", "t"]))
def test_no_text_crashes_the_parser(text: str, filename: str) -> None:
    try:
        found = parse_teams(text, filename)
    except TeamFileError as exc:
        assert exc.errors
        for error in exc.errors:
            assert error.startswith(f"{filename}:")
            error.encode("utf-8")  # printable and sendable as JSON
    else:
        assert all(isinstance(team, Team) for team in found)


@settings(max_examples=300, deadline=None)
@given(
    members=st.lists(
        st.fixed_dictionaries(
            {
                "person": st.text(max_size=12),
                "email": st.text(max_size=20),
                "moodle": st.text(max_size=8),
            }
        ),
        max_size=5,
    )
)
def test_generated_csv_rows_parse_or_fail_with_lines(members: list[dict[str, str]]) -> None:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["team", "person", "email", "moodle"])
    writer.writeheader()
    writer.writerows({"team": "t", **m} for m in members)
    try:
        parse_teams(out.getvalue(), "g.csv")
    except TeamFileError as exc:
        assert all(e.startswith("g.csv:") for e in exc.errors)


def test_an_email_standing_in_for_the_person_is_named_once() -> None:
    assert _errors("team,email\na,bad\n", "t.csv") == [
        "t.csv:2: team 'a', person 'bad': email: 'bad' is not an email address (name@domain.tld)"
    ]
