"""Canvas Live Events: signed JWTs checked against local keys generated here, then read."""

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connectors.canvas.fake import fixture
from connectors.canvas.jwt import LiveEvent, LiveEventVerifier, local_id, parse_event
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    UnsupportedEventError,
)

KID = "2026-11-30T00:00:00Z"
ISSUER = "https://canvas.example.com"
AUDIENCE = "https://cairn.example.com/hooks/canvas"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING = rsa_key()
OTHER = rsa_key()


def jwks(*keys: tuple[str, Any]) -> dict[str, Any]:
    """A JWKS document with the public halves of `keys` ((kid, private key) pairs)."""
    found = []
    for kid, key in keys:
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else None
        public = (algorithm or jwt.algorithms.ECAlgorithm).to_jwk(key.public_key(), as_dict=True)
        found.append({**public, "kid": kid, "use": "sig"})
    return {"keys": found}


def verifier(**options: Any) -> LiveEventVerifier:
    return LiveEventVerifier(json.dumps(jwks((KID, SIGNING))), **options)


def token(
    claims: Mapping[str, Any],
    *,
    key: Any = SIGNING,
    kid: str | None = KID,
    algorithm: str = "RS256",
    **extra: Any,
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    payload = {"iat": int(datetime.now(UTC).timestamp()), **claims, **extra}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


COMPLETED = fixture("live_event_course_completed.json")
SUBMITTED = fixture("live_event_submission_created.json")


# --- accepted ----------------------------------------------------------------------------------


def test_course_completed_is_read() -> None:
    event = verifier().read(token(COMPLETED))
    assert event == LiveEvent(
        name="course_completed",
        user_id="1021",
        course_id="565",
        assignment_id=None,
        at=datetime(2026, 11, 21, 19, 11, 25, 218000, tzinfo=UTC),
    )


def test_submission_created_is_read_with_global_ids_made_local() -> None:
    event = verifier().read(token(SUBMITTED).encode())  # the raw request body
    assert event == LiveEvent(
        name="submission_created",
        user_id="1021",
        course_id="565",
        assignment_id="8812",
        at=datetime(2026, 11, 21, 19, 11, 21, 419000, tzinfo=UTC),
    )


def test_a_submission_outside_a_course_context_has_no_course() -> None:
    claims = json.loads(json.dumps(SUBMITTED))
    for key in ("context_id", "context_type", "context_role", "context_account_id"):
        claims["metadata"].pop(key)
    assert verifier().read(token(claims)).course_id is None


def test_issuer_and_audience_when_configured() -> None:
    checked = verifier(issuer=ISSUER, audience=AUDIENCE)
    event = checked.read(token(COMPLETED, iss=ISSUER, aud=AUDIENCE))
    assert event.name == "course_completed"


def test_a_valid_expiry_and_several_keys() -> None:
    checked = LiveEventVerifier(jwks(("old", OTHER), (KID, SIGNING)))
    expires = int((datetime.now(UTC) + timedelta(minutes=5)).timestamp())
    assert checked.read(token(COMPLETED, exp=expires)).user_id == "1021"
    assert checked.read(token(COMPLETED, key=OTHER, kid="old")).user_id == "1021"


def test_an_elliptic_curve_key_when_allowed() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    checked = LiveEventVerifier(jwks(("ec", key)), algorithms=("RS256", "ES256"))
    assert checked.read(token(COMPLETED, key=key, kid="ec", algorithm="ES256")).course_id == "565"


def test_without_a_max_age_an_old_event_is_accepted() -> None:
    claims = dict(COMPLETED)
    old = jwt.encode(claims, SIGNING, algorithm="RS256", headers={"kid": KID})  # no iat
    assert verifier(max_age=None).read(old).name == "course_completed"


# --- rejected ----------------------------------------------------------------------------------

PAST = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
FUTURE = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
HS256 = jwt.encode(dict(COMPLETED), "a-shared-secret-of-at-least-32-bytes!", headers={"kid": KID})
REJECTED: list[tuple[str, dict[str, Any], Any, str]] = [
    ("expired", {}, lambda: token(COMPLETED, exp=PAST), "has expired"),
    ("not yet valid", {}, lambda: token(COMPLETED, nbf=FUTURE), "not valid yet"),
    (
        "wrong audience",
        {"audience": AUDIENCE},
        lambda: token(COMPLETED, aud="https://other.example.com"),
        "wrong audience",
    ),
    ("no audience", {"audience": AUDIENCE}, lambda: token(COMPLETED), "no `aud` claim"),
    ("an audience nobody configured", {}, lambda: token(COMPLETED, aud=AUDIENCE), "audience"),
    (
        "wrong issuer",
        {"issuer": ISSUER},
        lambda: token(COMPLETED, iss="https://evil.example.com"),
        "wrong issuer",
    ),
    ("no issuer", {"issuer": ISSUER}, lambda: token(COMPLETED), "no `iss` claim"),
    ("unknown key id", {}, lambda: token(COMPLETED, kid="rotated-away"), "unknown key id"),
    ("no key id", {}, lambda: token(COMPLETED, kid=None), "no key id"),
    ("bad signature", {}, lambda: token(COMPLETED, key=OTHER), "bad signature"),
    ("HS256 with a guessed secret", {}, lambda: HS256, "algorithm 'HS256' is not allowed"),
    ("not a JWT", {}, lambda: "this is not a token", "not a well-formed JWT"),
    (
        "too old",
        {},
        lambda: token(COMPLETED, iat=int((datetime.now(UTC) - timedelta(days=2)).timestamp())),
        "older than",
    ),
]


@pytest.mark.parametrize(
    ("options", "make", "match"),
    [row[1:] for row in REJECTED],
    ids=[row[0] for row in REJECTED],
)
def test_rejected_with_a_clear_error(options: dict[str, Any], make: Any, match: str) -> None:
    with pytest.raises(AuthenticationError, match=match):
        verifier(**options).read(make())


def test_a_tampered_payload_fails_the_signature() -> None:
    header, payload, signature = token(COMPLETED).split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["body"]["user"]["id"] = "1"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(AuthenticationError, match="bad signature"):
        verifier().read(f"{header}.{forged}.{signature}")


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode(dict(COMPLETED), "", algorithm="none", headers={"kid": KID})
    with pytest.raises(AuthenticationError, match="algorithm 'none' is not allowed"):
        verifier().read(unsigned)


def test_an_event_without_any_time_is_refused_under_a_max_age() -> None:
    claims = json.loads(json.dumps(COMPLETED))
    claims["metadata"].pop("event_time")
    unstamped = jwt.encode(claims, SIGNING, algorithm="RS256", headers={"kid": KID})
    with pytest.raises(AuthenticationError, match="no issue time"):
        verifier().read(unstamped)


# --- verified, but not for Cairn ---------------------------------------------------------------


def test_other_events_are_unsupported() -> None:
    claims = json.loads(json.dumps(COMPLETED))
    claims["metadata"]["event_name"] = "course_progress"
    with pytest.raises(UnsupportedEventError, match="course_progress"):
        verifier().read(token(claims))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c.pop("body"),
        lambda c: c["body"].pop("user"),
        lambda c: c["body"]["user"].update(id="someone"),
        lambda c: (c["body"]["progress"].pop("completed_at"), c["metadata"].pop("event_time")),
    ],
)
def test_malformed_events_are_payload_errors(mangle: Any) -> None:
    claims = json.loads(json.dumps(COMPLETED))
    mangle(claims)
    with pytest.raises(PayloadError):
        parse_event(claims)


def test_local_ids() -> None:
    assert local_id("21070000000001021", "id") == "1021"
    assert local_id("1021", "id") == "1021"
    assert local_id(565, "id") == "565"
    for bad in ("", "0", "12a", None, "١٢"):
        with pytest.raises(PayloadError):
            local_id(bad, "id")


# --- configuration -----------------------------------------------------------------------------


def test_keys_from_a_setting_as_json_or_as_a_file(tmp_path: Path) -> None:
    document = json.dumps(jwks((KID, SIGNING)))
    path = tmp_path / "canvas-jwks.json"
    path.write_text(document)
    for value in (document, str(path)):
        assert LiveEventVerifier.from_setting(value).read(token(COMPLETED)).user_id == "1021"


@pytest.mark.parametrize(
    "value",
    [
        "{not json",
        '{"keys": []}',
        '{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}',
        "/no/file",
    ],
)
def test_unusable_keys_are_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="Canvas live event keys"):
        LiveEventVerifier.from_setting(value)


def test_the_repr_names_key_ids_only() -> None:
    assert repr(verifier(issuer=ISSUER)) == f"LiveEventVerifier(keys=['{KID}'], issuer='{ISSUER}')"
