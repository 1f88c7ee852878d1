"""Roles, permissions and principals: the grants table, names, and group grants."""

import pytest

from core.access import (
    GRANTS,
    Permission,
    Principal,
    Role,
    check_token_name,
    normalise_person,
    parse_grant,
    roles_granting,
)


def test_grants_follow_the_documented_roles() -> None:
    assert roles_granting(Permission.READ) == tuple(Role)
    assert roles_granting(Permission.AUTHOR) == (Role.ADMIN, Role.OWNER)
    assert roles_granting(Permission.REVIEW) == (Role.ADMIN, Role.REVIEWER)
    assert roles_granting(Permission.OPERATE) == (Role.ADMIN, Role.PLATFORM)
    assert roles_granting(Permission.IMPORT) == (Role.ADMIN,)
    assert roles_granting(Permission.WAIVE) == (Role.ADMIN, Role.COMPLIANCE)
    assert roles_granting(Permission.ADMINISTER) == (Role.ADMIN,)
    # Compliance grants waivers but changes no lesson or rule; readers only read.
    assert GRANTS[Role.COMPLIANCE] == {Permission.READ, Permission.WAIVE}
    assert GRANTS[Role.READER] == {Permission.READ}


def test_owners_author_only_for_their_teams() -> None:
    owner = Principal("token:o", frozenset({Role.OWNER}), frozenset({"payments"}))
    reviewer = Principal("token:r", frozenset({Role.REVIEWER}), frozenset({"payments"}))
    admin = Principal("token:a", frozenset({Role.ADMIN}))
    assert owner.may_author_for("payments") and not owner.may_author_for("ledger")
    assert not reviewer.may_author_for("payments")  # teams scope the owner role only
    assert admin.may_author_for("anything")
    assert Principal("user:nobody", frozenset()).can(Permission.READ) is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Mallory", "mallory"), ("  mallory ", "mallory"), ("\uff2d\uff41llory", "mallory")],
)
def test_people_are_one_id_whatever_their_case_or_width(raw: str, expected: str) -> None:
    assert normalise_person(raw) == expected


@pytest.mark.parametrize("raw", ["mal\u200blory", "mal\u202elory", "mal\x00lory", "", "x" * 201])
def test_invisible_control_and_odd_names_are_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalise_person(raw)


def test_group_grants_and_token_names() -> None:
    assert parse_grant("reviewer") == (Role.REVIEWER, None)
    assert parse_grant("owner:payments") == (Role.OWNER, "payments")
    for bad in ("owner", "reviewer:payments", "root"):
        with pytest.raises(ValueError):
            parse_grant(bad)
    assert check_token_name("ci.deploy-bot_2") == "ci.deploy-bot_2"
    for bad in ("", "Upper", "-lead", "a" * 65, "spa ce"):
        with pytest.raises(ValueError):
            check_token_name(bad)
