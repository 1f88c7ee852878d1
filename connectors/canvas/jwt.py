"""Canvas Live Events pushed over HTTPS: verify the signed JWT, read the event Cairn acts on.

Canvas Data Services, with "signed JWT payloads" on, POSTs each event as a JWT (RS256) whose
claims are the event itself (`{"metadata": {…}, "body": {…}}`) and whose header names the
signing key (`kid`). The keys are configured locally (a JWKS document, as text or a file): Cairn
fetches nothing at request time. Rejected, each with its own AuthenticationError message: a
token that is not a JWT, an algorithm not allowed, no or an unknown key id, a bad signature,
`exp` passed or `nbf`/`iat` in the future, a wrong or missing `aud`/`iss` when one is configured
(and any `aud` when none is, as RFC 7519 asks), and an event older than `max_age` (by `iat`, else
`metadata.event_time`).

Two events are read: `course_completed` (user and course from the body, time
`progress.completed_at`) and `submission_created` (user and assignment from the body, course
from `metadata.context_id` when the context is a course, time `submitted_at`). Any other verified
event is an UnsupportedEventError (acknowledged, ignored). Live Events carry global ids
(`shard × 10**13 + local id`) in some fields; ids are returned local, as the REST API gives them.
"""

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import jwt

from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    UnsupportedEventError,
)

EVENTS = ("course_completed", "submission_created")
SHARD_SPAN = 10**13
"""Canvas ids above this are global: shard id × 10**13 + the local id."""


class LiveEvent(NamedTuple):
    """What Cairn needs from one verified Live Event."""

    name: str
    user_id: str
    course_id: str | None
    assignment_id: str | None
    at: datetime


def local_id(value: Any, what: str) -> str:
    """A Canvas id as the REST API shows it (a global id reduced to its local part)."""
    text = str(value).strip() if isinstance(value, int | str) else ""
    if not text.isascii() or not text.isdigit() or int(text) == 0:
        raise PayloadError(f"Canvas live event: {what} is not a Canvas id")
    return str(int(text) % SHARD_SPAN or int(text))


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None  # out of any calendar: no time, like a missing one
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _object(parent: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    found = parent.get(key)
    if not isinstance(found, Mapping):
        raise PayloadError(f"Canvas live event: no `{where}` object")
    return found


def parse_event(claims: Mapping[str, Any]) -> LiveEvent:
    """The event Cairn acts on, from verified claims."""
    metadata = _object(claims, "metadata", "metadata")
    body = _object(claims, "body", "body")
    name = metadata.get("event_name")
    if name not in EVENTS:
        raise UnsupportedEventError(f"Canvas live event {name!r} is not one Cairn acts on")
    context = metadata.get("context_id") if metadata.get("context_type") == "Course" else None
    if name == "course_completed":
        user = local_id(_object(body, "user", "body.user").get("id"), "body.user.id")
        found = body.get("course")
        course = (found.get("id") if isinstance(found, Mapping) else None) or context
        if course is None:
            raise PayloadError("Canvas live event: no course (body.course.id or context_id)")
        progress = body.get("progress")
        done = progress.get("completed_at") if isinstance(progress, Mapping) else None
        at = _time(done) or _time(metadata.get("event_time"))
        assignment = None
    else:
        user = local_id(body.get("user_id"), "body.user_id")
        assignment = local_id(body.get("assignment_id"), "body.assignment_id")
        course = context
        at = _time(body.get("submitted_at")) or _time(metadata.get("event_time"))
    if at is None:
        raise PayloadError(f"Canvas live event {name}: no time")
    where = "course id (body.course.id or metadata.context_id)"
    course_id = local_id(course, where) if course is not None else None
    return LiveEvent(str(name), user, course_id, assignment, at)


def _keys(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    try:
        found = jwt.PyJWKSet.from_dict(dict(document))
    except (jwt.PyJWKSetError, jwt.InvalidKeyError, jwt.PyJWKError) as exc:
        raise ConfigurationError(
            f"Canvas live event keys: no usable key in the JWKS ({exc})"
        ) from exc
    keys = {key.key_id: key for key in found.keys if key.key_id}
    if not keys:
        raise ConfigurationError("Canvas live event keys: no key in the JWKS has a `kid`")
    return keys


class LiveEventVerifier:
    """Checks Live Event JWTs against locally configured public keys."""

    def __init__(
        self,
        jwks: str | Mapping[str, Any],
        *,
        issuer: str | None = None,
        audience: str | None = None,
        algorithms: Iterable[str] = ("RS256",),
        max_age: timedelta | None = timedelta(days=1),
        leeway: timedelta = timedelta(seconds=60),
    ) -> None:
        if isinstance(jwks, str):
            try:
                jwks = json.loads(jwks)
            except ValueError as exc:
                raise ConfigurationError("Canvas live event keys: the JWKS is not JSON") from exc
        if not isinstance(jwks, Mapping):
            raise ConfigurationError("Canvas live event keys: the JWKS is not a JSON object")
        self._keys = _keys(jwks)
        self.issuer = issuer
        self.audience = audience
        self.algorithms = tuple(algorithms)
        self.max_age = max_age
        self.leeway = leeway

    @classmethod
    def from_setting(cls, value: str, **options: Any) -> "LiveEventVerifier":
        """From a setting holding either the JWKS JSON itself or the path of a file with it."""
        text = value.strip()
        if not text.startswith("{"):
            try:
                text = Path(text).expanduser().read_text()
            except OSError as exc:
                raise ConfigurationError(f"Canvas live event keys: cannot read {text!r}") from exc
        return cls(text, **options)

    def __repr__(self) -> str:
        return f"LiveEventVerifier(keys={sorted(self._keys)}, issuer={self.issuer!r})"

    def verify(self, token: str | bytes) -> dict[str, Any]:
        """The claims of a valid token; AuthenticationError (saying why) for any other."""
        raw = token.decode("ascii", "replace") if isinstance(token, bytes) else token
        raw = raw.strip().strip('"')
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.DecodeError as exc:
            raise AuthenticationError("Canvas live event: not a well-formed JWT") from exc
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self.algorithms:
            raise AuthenticationError(f"Canvas live event: algorithm {algorithm!r} is not allowed")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("Canvas live event: the token names no key id (kid)")
        key = self._keys.get(kid)
        if key is None:
            raise AuthenticationError(f"Canvas live event: unknown key id {kid[:64]!r}")
        claims = self._decode(raw, key, algorithm)
        self._check_age(claims)
        return claims

    def read(self, token: str | bytes) -> LiveEvent:
        """Verify the token, then read the event (UnsupportedEventError for other events)."""
        return parse_event(self.verify(token))

    def _decode(self, raw: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                raw,
                key.key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    "require": [c for c, v in (("iss", self.issuer), ("aud", self.audience)) if v]
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("Canvas live event: the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationError("Canvas live event: the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("Canvas live event: wrong audience (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("Canvas live event: wrong issuer (iss)") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"Canvas live event: no `{exc.claim}` claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("Canvas live event: bad signature") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(f"Canvas live event: invalid token ({exc})") from exc

    def _check_age(self, claims: Mapping[str, Any]) -> None:
        if self.max_age is None:
            return
        metadata = claims.get("metadata")
        issued = _time(claims.get("iat"))
        if issued is None and isinstance(metadata, Mapping):
            issued = _time(metadata.get("event_time"))
        if issued is None:
            raise AuthenticationError("Canvas live event: no issue time (iat or event_time)")
        if datetime.now(UTC) - issued > self.max_age + self.leeway:
            raise AuthenticationError("Canvas live event: older than the accepted age")
