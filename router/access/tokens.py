"""API tokens: create (the secret is shown once), list, revoke, and authenticate a bearer."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.access import Principal, Role, check_token_name
from core.base import utcnow
from core.errors import AuthenticationError, ConflictError
from store import audit, tokens
from store.engine import Database
from store.tokens import TokenRecord

PREFIX = "cairn_"
_SHAPE = re.compile(r"^cairn_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^([0-9]{1,5})([dhm])$")  # ASCII digits only
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
TOUCH_EVERY = timedelta(seconds=60)
"""A token's last-used time is written at most this often (a read-mostly API stays read-only)."""

REFUSED = "invalid, expired or revoked token"
"""The one answer for every bad token, so a guesser learns nothing from the difference."""


def parse_expiry(text: str) -> timedelta | None:
    """`90d`, `12h`, `30m` as a duration; `never` as None; ValueError otherwise."""
    if text == "never":
        return None
    found = _DURATION.fullmatch(text)
    if found is None or int(found[1]) == 0:
        raise ValueError(f"{text!r}: give a duration such as 90d, 12h or 30m, or 'never'")
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(record: TokenRecord) -> Principal:
    """The principal a token acts as: `token:<name>`, its role and teams."""
    return Principal(
        id=f"token:{record.name}", roles=frozenset({record.role}), teams=frozenset(record.teams)
    )


@dataclass(frozen=True, slots=True)
class CreatedToken:
    """A new token: its record, and the secret (shown once, never stored)."""

    record: TokenRecord
    secret: str

    def __repr__(self) -> str:
        return f"CreatedToken(name={self.record.name!r}, secret=***)"


class TokenService:
    """Token operations over the store, each in one transaction with its audit entry."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        role: Role,
        teams: tuple[str, ...],
        expires_in: timedelta | None,
        actor: Principal,
    ) -> CreatedToken:
        """A new token for `role` (an owner needs at least one team, other roles take none)."""
        check_token_name(name)
        if role == Role.OWNER and not teams:
            raise ConflictError("an owner token needs at least one --team")
        if role != Role.OWNER and teams:
            raise ConflictError(f"teams scope owner tokens only; a {role.value} token is global")
        now = utcnow()
        token_id = secrets.token_hex(8)
        secret = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = TokenRecord(
            id=token_id,
            name=name,
            role=role,
            teams=tuple(sorted(set(teams))),
            created_at=now,
            created_by=actor.id,
            expires_at=None if expires_in is None else now + expires_in,
            last_used_at=None,
            revoked_at=None,
        )
        with self.db.transaction() as session:
            tokens.add(session, record, _digest(secret))
            expires = None if record.expires_at is None else record.expires_at.isoformat()
            details = {"role": role.value, "teams": list(record.teams), "expires_at": expires}
            audit.record_by(session, actor, "token.created", f"token:{name}", details, now)
        return CreatedToken(record, secret)

    def list(self) -> list[TokenRecord]:
        """Every token, never its secret."""
        with self.db.transaction() as session:
            return tokens.listed(session)

    def revoke(self, name: str, actor: Principal) -> TokenRecord:
        """Revoke the named token at once."""
        with self.db.transaction() as session:
            now = utcnow()
            record = tokens.revoke(session, name, now)
            audit.record_by(session, actor, "token.revoked", f"token:{name}", {}, now)
            return record

    def authenticate(self, presented: str) -> Principal:
        """The principal of a bearer token, or AuthenticationError (one message for every case)."""
        shape = _SHAPE.fullmatch(presented)
        if shape is None:
            raise AuthenticationError(REFUSED)
        with self.db.transaction() as session:
            found = tokens.find(session, shape[1])
            # Compare even when the id is unknown, so timing does not tell ids apart.
            stored = found[1] if found is not None else "0" * 64
            matches = hmac.compare_digest(_digest(presented), stored)
            now = utcnow()
            if found is None or not matches or not found[0].usable(now):
                raise AuthenticationError(REFUSED)
            record = found[0]
            if record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY:
                tokens.touch(session, record.id, now)
        return principal_of(record)

    def principal_by_id(self, token_id: str) -> Principal:
        """The principal of a token already authenticated once (a dashboard session holds only
        the token's public id): AuthenticationError once it is revoked, expired or gone."""
        with self.db.transaction() as session:
            found = tokens.find(session, token_id)
        if found is None or not found[0].usable(utcnow()):
            raise AuthenticationError(REFUSED)
        return principal_of(found[0])

    def token_id(self, presented: str) -> str:
        """The public id part of a token as presented (already authenticated)."""
        shape = _SHAPE.fullmatch(presented)
        if shape is None:
            raise AuthenticationError(REFUSED)
        return shape[1]


def expiry_text(record: TokenRecord, now: datetime) -> str:
    """`revoked`, `expired`, `never` or the expiry time, for listings."""
    if record.revoked_at is not None:
        return "revoked"
    if record.expires_at is None:
        return "never"
    return ("expired " if now >= record.expires_at else "") + record.expires_at.isoformat(
        timespec="seconds"
    )
