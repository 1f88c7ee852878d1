"""Recording work items: two workers seeing one new work item at once both succeed."""

import threading

from core.base import utcnow
from core.work import System, WorkItem
from store import migrate, work_items
from store.engine import Database


def test_two_workers_recording_one_new_work_item_at_once_both_succeed(postgres_url: str) -> None:
    """Two webhooks of one new PR, handled by two processes: neither fails on the other's
    insert, exactly one is told the item is new, and both observed states are kept."""
    db = Database(postgres_url)
    migrate.upgrade(db)
    item = WorkItem(
        system=System.GITHUB,
        ref="github:acme/api#7",
        project="acme/api",
        type="pull_request",
        team="payments",
    )
    inside = threading.Barrier(2)
    created: list[bool] = []
    errors: list[BaseException] = []

    def record(title: str) -> None:
        try:
            with db.transaction() as session:
                inside.wait(timeout=10)  # both transactions open before either inserts
                seen = item.model_copy(update={"title": title})
                created.append(work_items.record(session, seen, utcnow()))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(t,)) for t in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(created) == [False, True]
    with db.transaction() as session:
        stored = work_items.get(session, item.ref)
        events = work_items.events_since(session, utcnow().replace(year=2000))
    assert stored is not None and stored.title in ("first", "second")
    assert len(events) == 2
    db.dispose()
