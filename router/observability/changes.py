"""Counts placements and signals as their transactions commit, whichever code wrote them."""

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from router.metrics import PLACEMENTS, SIGNALS
from store.placements import WRITTEN
from store.tables import PlacementRow, SignalRow

_PENDING = "cairn_metric_changes"
_installed = False


def _flushed(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    found: list[tuple[str, ...]] = session.info.setdefault(_PENDING, [])
    for row in session.new:
        if isinstance(row, PlacementRow):
            found.append(("placement", _form(row), row.state))
        elif isinstance(row, SignalRow):
            found.append(("signal", row.kind))
    for row in session.dirty:
        if isinstance(row, PlacementRow) and inspect(row).attrs.state.history.has_changes():
            found.append(("placement", _form(row), row.state))


def _form(row: PlacementRow) -> str:
    doc: dict[str, Any] = row.doc or {}
    return str(doc.get("form", "unknown"))


def _committed(session: Session) -> None:
    for form, state in session.info.pop(WRITTEN, []):
        PLACEMENTS.labels(form, state).inc()
    for change in session.info.pop(_PENDING, []):
        if change[0] == "placement":
            PLACEMENTS.labels(change[1], change[2]).inc()
        else:
            SIGNALS.labels(change[1]).inc()


def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(WRITTEN, None)


def install() -> None:
    """Start counting (once per process)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _flushed)
    event.listen(Session, "after_commit", _committed)
    event.listen(Session, "after_rollback", _rolled_back)
    _installed = True
