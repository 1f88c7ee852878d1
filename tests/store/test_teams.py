"""The team map on SQLite and PostgreSQL: replace a team idempotently, read it, find people."""

from datetime import timedelta

import pytest

from core.base import utcnow
from core.team import Member, Team
from store import migrate, teams
from store.engine import Database
from store.tables import TeamMemberRow

DANA = Member(
    person="dana@example.com",
    name="Dana Hill",
    email="dana@example.com",
    lms_ids={"moodle": "17", "canvas": "4021", "xapi": "dana-h"},
    logins={"github": "dana-h", "jira": "5b10ac8d82e05b22cc7d4ef5"},
)
LEE = Member(person="lee", email="lee@example.com", lms_ids={"moodle": "18"})
SAM = Member(person="sam", logins={"github": "sam-gh"})


def test_replace_adds_changes_removes_and_is_idempotent(db: Database) -> None:
    start = utcnow()
    payments = Team(name="payments", members=(DANA, LEE))
    with db.transaction() as session:
        assert teams.replace_team(session, payments, start) == (2, 0, 0)
    with db.transaction() as session:
        assert teams.replace_team(session, payments, start + timedelta(hours=1)) == (0, 0, 0)
        assert teams.team(session, "payments") == payments
        stamps = {r.person: r.updated_at for r in session.query(TeamMemberRow)}
    assert set(stamps.values()) == {start}  # nothing was rewritten

    renamed = DANA.model_copy(update={"name": "Dana H.", "lms_ids": {"moodle": "17"}})
    later = start + timedelta(hours=2)
    with db.transaction() as session:
        changed = Team(name="payments", members=(renamed, SAM))
        assert teams.replace_team(session, changed, later) == (1, 1, 1)
        assert teams.team(session, "payments") == changed
        assert teams.member(session, "payments", "lee") is None
        stamps = {r.person: r.updated_at for r in session.query(TeamMemberRow)}
    assert stamps == {"dana@example.com": later, "sam": later}

    with db.transaction() as session:
        assert teams.replace_team(session, Team(name="payments", members=()), later) == (0, 0, 2)
        assert teams.team(session, "payments") is None
        assert teams.teams(session) == []


def test_teams_are_read_back_whole_and_in_order(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        teams.replace_team(session, Team(name="ops", members=(SAM, DANA)), now)
        teams.replace_team(session, Team(name="checkout", members=(LEE,)), now)
    with db.transaction() as session:
        found = teams.teams(session)
        assert [t.name for t in found] == ["checkout", "ops"]
        assert found[1].members == (DANA, SAM)
        assert teams.member(session, "ops", "DANA@Example.com") == DANA
        assert teams.member(session, "ops", "not a person") is None
        assert teams.member(session, "checkout", "dana@example.com") is None
        assert teams.team(session, "nobody") is None
        assert teams.all_members(session) == [
            ("checkout", LEE),
            ("ops", DANA),
            ("ops", SAM),
        ]


def test_find_by_email_lms_id_and_login(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        teams.replace_team(session, Team(name="payments", members=(DANA, LEE)), now)
        teams.replace_team(session, Team(name="ops", members=(DANA, SAM)), now)
    with db.transaction() as session:
        both = [("ops", DANA), ("payments", DANA)]
        assert teams.find(session, email=" Dana@EXAMPLE.com") == both
        assert teams.find(session, lms=("moodle", "17")) == both
        assert teams.find(session, lms=("xapi", "dana-h")) == both
        assert teams.find(session, lms=("moodle", "18")) == [("payments", LEE)]
        assert teams.find(session, login=("github", "sam-gh")) == [("ops", SAM)]
        assert teams.find(session, login=("jira", "5b10ac8d82e05b22cc7d4ef5")) == both
        # Every criterion given must hold.
        assert teams.find(session, email="lee@example.com", lms=("moodle", "17")) == []
        assert teams.find(session, email="lee@example.com", lms=("moodle", "18")) == [
            ("payments", LEE)
        ]
        # Ids are per system, and nothing matches an id no member has.
        assert teams.find(session, lms=("canvas", "17")) == []
        assert teams.find(session, login=("github", "dana-h' OR 1=1 --")) == []
        assert teams.find(session, lms=('moodle"."x', "17")) == []
        assert teams.find(session, email="nobody@example.com") == []
        with pytest.raises(ValueError, match="needs"):
            teams.find(session)


def test_a_migrated_database_can_go_back_before_the_team_map(db: Database) -> None:
    from alembic import command

    from store.migrate import _config

    cfg = _config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
        conn.commit()
    assert migrate.current_revision(db) == "0007"
    assert migrate.upgrade(db) == migrate.head_revision()
