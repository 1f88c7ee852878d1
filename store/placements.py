"""Repository of placements and the signals that come back about them."""

from collections.abc import Collection, Sequence

from sqlalchemy import bindparam, insert, select
from sqlalchemy import update as update_rows
from sqlalchemy.orm import Session

from core.adoption import THEATRE_KINDS
from core.errors import NotFoundError
from core.placement import Placement, PlacementState, Signal, SignalKind
from store import ledger, tallies
from store.documents import from_doc, to_doc
from store.tables import PlacementRow, SignalRow, WorkItemRow, core_table, flushed

# Every routed work item runs these: built once, run without the ORM (see
# `store.tables.core_table`).
_T = core_table(PlacementRow)
_ITEMS = core_table(WorkItemRow)
_KNOWN = select(_T.c.effect_id, _T.c.doc).where(
    _T.c.effect_id.in_(bindparam("effects", expanding=True))
)
_ITEMS_OF = select(_ITEMS.c.ref, _ITEMS.c.project, _ITEMS.c.doc).where(
    _ITEMS.c.ref.in_(bindparam("refs", expanding=True))
)
_ADD = insert(_T)

_LOCK = (
    select(_T.c.id, _T.c.state, _T.c.created_at, _T.c.rule_id, _T.c.tier, _T.c.due_at)
    .where(_T.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_T.c.id)
    .with_for_update()
)
_CHANGE = update_rows(_T).where(_T.c.id == bindparam("placement_id"))
"""Sets the columns its parameters name (besides `placement_id`)."""

WRITTEN = "cairn.placements.written"
"""`session.info` key: (form, state) of each placement row the transaction inserted or
changed without the ORM, for whoever counts what a transaction wrote once it commits."""
_IN_WORK_ITEM = (
    select(_T.c.doc)
    .where(_T.c.work_item_ref == bindparam("item_ref"))
    .order_by(_T.c.created_at, _T.c.id)
)


def add(session: Session, placement: Placement) -> Placement:
    """Record a planned placement once per effect; a repeat returns the one already recorded."""
    return add_many(session, [placement])[0]


def add_many(session: Session, planned: Sequence[Placement]) -> list[Placement]:
    """Record planned placements once per effect, in one read of those already recorded and
    one insert; each repeat gives back the placement already recorded, in `planned`'s order."""
    effects = [p.effect_id for p in planned]
    if not effects:
        return []
    connection = flushed(session)
    existing = {
        effect: from_doc(Placement, doc)
        for effect, doc in connection.execute(_KNOWN, {"effects": effects})
    }
    refs = sorted({p.work_item_ref for p in planned if p.effect_id not in existing})
    items = {row.ref: row for row in connection.execute(_ITEMS_OF, {"refs": refs})} if refs else {}
    result, rows = [], []
    for placement in planned:
        found = existing.get(placement.effect_id)
        if found is not None:
            result.append(found)
            continue
        existing[placement.effect_id] = placement  # the same effect twice in one call: once
        columns = ledger.columns_of_new(placement, items.get(placement.work_item_ref))
        rows.append(
            {
                "id": placement.id,
                "effect_id": placement.effect_id,
                "lesson_id": placement.lesson_id,
                "lesson_version": placement.lesson_version,
                "work_item_ref": placement.work_item_ref,
                "state": placement.state.value,
                "reminded_at": placement.reminded_at,
                "doc": to_doc(placement),
                "created_at": placement.created_at,
                "updated_at": placement.updated_at,
                "theatre": None,
                **columns,
            }
        )
        key = tallies.key_of(
            placement.created_at, columns["rule_id"], columns["tier"], columns["due_at"]
        )
        tallies.placed(session, key, placement.lesson_id, columns["mandate"])
        result.append(placement)
    if rows:
        connection.execute(_ADD, rows)
        written: list[tuple[str, str]] = session.info.setdefault(WRITTEN, [])
        written.extend((str(row["doc"].get("form", "unknown")), row["state"]) for row in rows)
    return result


def update(session: Session, placement: Placement) -> None:
    """Store a placement's new state, handle, due date or last reminder."""
    update_many(session, [placement])


def update_many(session: Session, changed: Sequence[Placement]) -> None:
    """Store placements' new states, handles, due dates or last reminders: their rows locked
    in one read (in id order, so two writers never deadlock), their signals in another."""
    if not changed:
        return
    ids = sorted({p.id for p in changed})
    connection = flushed(session)
    rows = {row.id: row for row in connection.execute(_LOCK, {"ids": ids})}
    missing = [placement_id for placement_id in ids if placement_id not in rows]
    if missing:  # before any tally moves or any row changes
        raise NotFoundError(f"placement {missing[0]!r} does not exist")
    signals = ledger.signals_for(session, ids)
    # Each row's state and tally as this call leaves it: a placement given twice moves on
    # from its first change, as it would through one ORM row.
    now_in = {
        row.id: (row.state, tallies.key_of(row.created_at, row.rule_id, row.tier, row.due_at))
        for row in rows.values()
    }
    values = []
    written: list[tuple[str, str]] = session.info.setdefault(WRITTEN, [])
    for placement in changed:
        row = rows[placement.id]
        columns = ledger.report_columns(placement, signals.get(placement.id, []))
        state_before, before = now_in[placement.id]
        after = tallies.key_of(
            row.created_at, columns["rule_id"], columns["tier"], columns["due_at"]
        )
        tallies.moved(session, before, after)
        now_in[placement.id] = (placement.state.value, after)
        doc = to_doc(placement)
        values.append(
            {
                "placement_id": placement.id,
                "state": placement.state.value,
                "reminded_at": placement.reminded_at,
                "doc": doc,
                "updated_at": placement.updated_at,
                **columns,
            }
        )
        if placement.state.value != state_before:  # counted by the state it entered
            written.append((str(doc.get("form", "unknown")), placement.state.value))
    connection.execute(_CHANGE, values)
    # An ORM copy of a changed row that this transaction loaded earlier is out of date now.
    for placement_id in ids:
        held = session.identity_map.get(session.identity_key(PlacementRow, placement_id))
        if held is not None:
            session.expire(held)


def get(session: Session, placement_id: str) -> Placement | None:
    """One placement by id."""
    row = session.get(PlacementRow, placement_id)
    return None if row is None else from_doc(Placement, row.doc)


def for_work_item(session: Session, ref: str) -> list[Placement]:
    """Every placement in one work item, oldest first."""
    rows = flushed(session).execute(_IN_WORK_ITEM, {"item_ref": ref}).scalars()
    return [from_doc(Placement, doc) for doc in rows]


def for_lesson(session: Session, lesson_id: str) -> list[Placement]:
    """Every placement of any version of one lesson, oldest first."""
    rows = session.scalars(
        select(PlacementRow)
        .where(PlacementRow.lesson_id == lesson_id)
        .order_by(PlacementRow.created_at, PlacementRow.id)
    )
    return [from_doc(Placement, row.doc) for row in rows]


def in_state(session: Session, state: PlacementState) -> list[Placement]:
    """Every placement in one state, oldest first."""
    rows = session.scalars(
        select(PlacementRow.doc)
        .where(PlacementRow.state == state.value)
        .order_by(PlacementRow.created_at, PlacementRow.id)
    )
    return [from_doc(Placement, doc) for doc in rows]


def add_signal(session: Session, signal: Signal) -> bool:
    """Record a signal once (by id); False when it was already recorded."""
    if session.get(SignalRow, signal.id) is not None:
        return False
    session.add(
        SignalRow(
            id=signal.id,
            placement_id=signal.placement_id,
            kind=signal.kind.value,
            at=signal.at,
            doc=to_doc(signal),
        )
    )
    session.flush()
    row = session.get(PlacementRow, signal.placement_id)
    if row is not None:  # the report columns follow the signals, in this transaction
        before = tallies.row_key(row)
        ledger.refresh(session, row, from_doc(Placement, row.doc))
        tallies.moved(session, before, tallies.row_key(row))
        if signal.kind in THEATRE_KINDS:
            ledger.refresh_theatre(session, row.work_item_ref)
    return True


def signals(session: Session, placement_id: str) -> list[Signal]:
    """Signals about one placement, in time order."""
    rows = session.scalars(
        select(SignalRow).where(SignalRow.placement_id == placement_id).order_by(SignalRow.at)
    )
    return [from_doc(Signal, row.doc) for row in rows]


def work_item_refs(session: Session) -> list[str]:
    """Every work item that has placements, in ref order."""
    rows = session.scalars(select(PlacementRow.work_item_ref).distinct())
    return sorted(rows)


FINISHING_KINDS = frozenset(
    {
        SignalKind.MERGED_CLEAN,
        SignalKind.MERGED_UNCHECKED,
        SignalKind.RESOLVED_CLEAN,
        SignalKind.RESOLVED_UNCHECKED,
    }
)
"""Signals that say the work item was finished (merged, resolved): its items are history."""


def finished(session: Session, placement_ids: Collection[str]) -> set[str]:
    """Which of the placements sit in finished work: a merge or resolution was signalled."""
    if not placement_ids:
        return set()
    rows = session.scalars(
        select(SignalRow.placement_id)
        .where(SignalRow.placement_id.in_(list(placement_ids)))
        .where(SignalRow.kind.in_([kind.value for kind in FINISHING_KINDS]))
        .distinct()
    )
    return set(rows)
