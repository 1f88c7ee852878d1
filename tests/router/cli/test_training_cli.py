"""`cairn training sync`: one round by hand, with the xAPI read's progress printed."""

from click.testing import CliRunner

from connectors.moodle.fake import MoodleFake
from connectors.xapi.fake import FakeLrs
from core.base import utcnow
from core.team import Member, Team
from router.cli import main
from store import lessons, migrate, outbox, teams
from store.engine import Database
from tests.router.test_training import IRI, course_lesson


def test_one_round_queues_learners_and_reads_statements_with_progress(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate.upgrade(db)
    moodle = MoodleFake()
    course = moodle.add_course("POOL-101")
    now = utcnow()
    with db.transaction() as session:
        lessons.add(session, course_lesson(course), now)
        lessons.publish(session, "pool-course", now)
        members = (Member(person="dana@example.com", email="dana@example.com"),)
        teams.replace_team(session, Team(name="payments", members=members), now)
    lrs = FakeLrs()
    with moodle.running(), lrs.running():
        lrs.add(
            {
                "actor": {"objectType": "Agent", "mbox": "mailto:dana@example.com"},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
                "object": {"objectType": "Activity", "id": IRI},
            }
        )
        env = {
            "CAIRN_DATABASE_URL": sqlite_url,
            "CAIRN_MOODLE_URL": moodle.url,
            "CAIRN_MOODLE_TOKEN": moodle.token,
            "CAIRN_XAPI_URL": lrs.url,
            "CAIRN_XAPI_USERNAME": "cairn",
            "CAIRN_XAPI_PASSWORD": "cairn-lrs-fake",
        }
        result = CliRunner().invoke(main, ["training", "sync"], env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "xAPI: 1 statements read so far" in result.output
    assert "1 learners queued for routing" in result.output
    assert "0 completions read from moodle" in result.output
    assert "0 from statements" in result.output  # nothing placed yet: no worker ran
    with db.transaction() as session:
        assert outbox.counts(session)["pending"] == 1
    db.dispose()
