"""Repository of API tokens: hashes and metadata only; the secret itself is never stored."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import Role
from core.errors import ConflictError, NotFoundError
from store.tables import ApiTokenRow


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: everything but its secret (the hash stays inside the store)."""

    id: str
    name: str
    role: Role
    teams: tuple[str, ...]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _record(row: ApiTokenRow) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        teams=tuple(row.teams),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def add(session: Session, record: TokenRecord, secret_hash: str) -> None:
    """Store a new token; its name must never have been used (names stay unique for the audit)."""
    taken = session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.name == record.name))
    if taken is not None:
        raise ConflictError(f"a token named {record.name!r} exists already (names are not reused)")
    session.add(
        ApiTokenRow(
            id=record.id,
            name=record.name,
            secret_hash=secret_hash,
            role=record.role.value,
            teams=list(record.teams),
            created_at=record.created_at,
            created_by=record.created_by,
            expires_at=record.expires_at,
            last_used_at=None,
            revoked_at=None,
        )
    )
    session.flush()


def find(session: Session, token_id: str) -> tuple[TokenRecord, str] | None:
    """The token with this public id and its stored hash."""
    row = session.get(ApiTokenRow, token_id)
    return None if row is None else (_record(row), row.secret_hash)


def listed(session: Session) -> list[TokenRecord]:
    """Every token, oldest first."""
    rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at, ApiTokenRow.name))
    return [_record(row) for row in rows]


def revoke(session: Session, name: str, now: datetime) -> TokenRecord:
    """Mark the named token revoked (again is a no-op); NotFoundError when there is none."""
    row = session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name).with_for_update())
    if row is None:
        raise NotFoundError(f"no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = now
    return _record(row)


def touch(session: Session, token_id: str, now: datetime) -> None:
    """Record a use of the token."""
    row = session.get(ApiTokenRow, token_id)
    if row is not None:
        row.last_used_at = now
