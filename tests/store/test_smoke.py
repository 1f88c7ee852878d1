from store.engine import Database
from store import migrate
def test_smoke(db: Database) -> None:
    assert migrate.current_revision(db) == migrate.head_revision()
