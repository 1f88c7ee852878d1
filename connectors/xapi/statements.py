"""xAPI statements as Cairn reads them: who did what to which activity, what that means for the
learner's training (`outcome`), and the check on statements pushed to `POST /hooks/xapi`.

The models are tolerant: an LRS adds whatever it likes (context, authority, attachments) and only
the fields below are read. A statement Cairn cannot use is skipped with a logged reason, never
raised: one odd statement must not stop a poll of thousands. Logged reasons name the statement's
id, never the learner.
"""

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    ValidationError,
)

from connectors.base import load_json
from connectors.lms import Completion
from core.errors import (
    AuthenticationError,
    ConfigurationError,
    PayloadError,
    describe_validation_error,
)

log = logging.getLogger(__name__)

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
COMPLETED = ADL_VERBS + "completed"
PASSED = ADL_VERBS + "passed"
FAILED = ADL_VERBS + "failed"
VOIDED = ADL_VERBS + "voided"
SATISFIED = "https://w3id.org/xapi/adl/verbs/satisfied"
"""cmi5: the LMS found the block or course's move-on criteria met."""

VERBS: Mapping[str, Completion] = {
    COMPLETED: Completion.COMPLETED,
    PASSED: Completion.PASSED,
    FAILED: Completion.FAILED,
    SATISFIED: Completion.COMPLETED,
}
"""The verbs that say where a learner stands; every other verb says nothing about completion."""


def _aware(moment: datetime) -> datetime:
    # xAPI requires an offset; a statement without one is read as UTC rather than dropped.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Moment = Annotated[datetime, AfterValidator(_aware)]
Iri = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Account(_Tolerant):
    """An actor's account on a system (`homePage`, `name`), e.g. the LMS's user id."""

    home_page: Iri = Field(alias="homePage")
    name: Text


class Actor(_Tolerant):
    """Who the statement is about; Cairn matches learners by mbox or by account."""

    object_type: str = Field("Agent", alias="objectType")
    mbox: Text | None = None
    account: Account | None = None

    @property
    def email(self) -> str | None:
        """The address of a `mailto:` mbox, lower-cased, if the actor has one."""
        if self.mbox is None or self.mbox[:7].lower() != "mailto:":
            return None
        address = self.mbox[7:].strip().lower()
        return address if "@" in address else None

    @property
    def learner(self) -> str | None:
        """A stable key for one person: `mailto:<address>` or `account:<homePage>|<name>`;
        None for a group or an agent identified otherwise (openid, mbox_sha1sum)."""
        if self.object_type != "Agent":
            return None
        if self.email is not None:
            return f"mailto:{self.email}"
        if self.account is not None:
            return f"account:{self.account.home_page}|{self.account.name}"
        return None


class Verb(_Tolerant):
    """What the actor did, by IRI."""

    id: Iri


class StatementObject(_Tolerant):
    """What the actor did it to; Cairn reads only activities (a training module's IRI)."""

    object_type: str = Field("Activity", alias="objectType")
    id: Iri | None = None


class Result(_Tolerant):
    """The outcome the statement reports, when it reports one."""

    success: StrictBool | None = None
    completion: StrictBool | None = None


class Statement(_Tolerant):
    """One xAPI statement, reduced to what Cairn reads."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    actor: Actor | None = None
    verb: Verb | None = None
    object_: StatementObject | None = Field(None, alias="object")
    result: Result | None = None
    timestamp: Moment | None = None
    stored: Moment | None = None

    @property
    def verb_id(self) -> str | None:
        """The verb's IRI."""
        return self.verb.id if self.verb is not None else None

    @property
    def activity(self) -> str | None:
        """The activity IRI the statement is about, when its object is an activity."""
        if self.object_ is None or self.object_.object_type != "Activity":
            return None
        return self.object_.id

    @property
    def learner(self) -> str | None:
        """The actor's learner key (see `Actor.learner`)."""
        return self.actor.learner if self.actor is not None else None

    @property
    def position(self) -> datetime | None:
        """Where the statement sits in the LRS's order: `stored`, else `timestamp`."""
        return self.stored or self.timestamp


def parse_statement(raw: Any) -> Statement | None:
    """One statement, or None (logged) when it is not one Cairn can read."""
    if not isinstance(raw, dict):
        log.warning("xAPI: skipped an entry that is not a statement object")
        return None
    try:
        return Statement.model_validate(raw)
    except ValidationError as exc:
        log.warning(
            "xAPI: skipped statement %.80r: %s", raw.get("id"), describe_validation_error(exc)
        )
        return None


def parse_statements(data: Any) -> list[Statement]:
    """The statements in a JSON value: one statement object or a list of them. Entries Cairn
    cannot read are skipped (logged); anything else is a PayloadError."""
    if isinstance(data, dict):
        entries: list[Any] = [data]
    elif isinstance(data, list):
        entries = data
    else:
        raise PayloadError("xAPI: expected a statement or a list of statements")
    return [s for s in map(parse_statement, entries) if s is not None]


def outcome(statement: Statement) -> Completion | None:
    """Where the statement says its learner stands in its activity, or None: a verb that says
    nothing about completion, or a statement too odd to credit anyone with (logged)."""
    completion = VERBS.get(statement.verb_id or "")
    if completion is None:
        log.debug("xAPI: statement %.80r: its verb is not a completion", statement.id)
        return None
    reason = _oddity(statement, completion)
    if reason is not None:
        log.warning("xAPI: statement %.80r skipped: %s", statement.id, reason)
        return None
    return completion


def _oddity(statement: Statement, completion: Completion) -> str | None:
    if statement.learner is None:
        return "the actor is not one learner identified by mbox or account"
    if statement.activity is None:
        return "the object is not an activity with an id"
    result = statement.result or Result()
    if completion is Completion.PASSED and result.success is False:
        return "`passed` with result.success false"
    if completion is Completion.FAILED and result.success is True:
        return "`failed` with result.success true"
    if statement.verb_id == COMPLETED and result.completion is False:
        return "`completed` with result.completion false"
    return None


# --- statements pushed to Cairn -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """The user and password a pushing LRS (or forwarder) must present with HTTP Basic auth."""

    username: str
    password: SecretStr

    def __post_init__(self) -> None:
        if not self.username or ":" in self.username or not self.password.get_secret_value():
            raise ConfigurationError("xAPI push: a user (without ':') and a password are needed")


@dataclass(frozen=True, slots=True)
class BearerSecret:
    """The secret a pushing LRS must present as `Authorization: Bearer <secret>`."""

    secret: SecretStr

    def __post_init__(self) -> None:
        if not self.secret.get_secret_value():
            raise ConfigurationError("xAPI push: the bearer secret is empty")


PushCredentials = BasicCredentials | BearerSecret


def verify_push(
    headers: Mapping[str, str], body: bytes, expected_credentials: PushCredentials
) -> list[Statement]:
    """The statements of a push to `POST /hooks/xapi` (one statement or a list), once its
    credentials verify (AuthenticationError otherwise). A body that is not JSON, or neither a
    statement nor a list, is a PayloadError; entries Cairn cannot read are skipped (logged)."""
    if not _authorized(_authorization(headers), expected_credentials):
        raise AuthenticationError("xAPI push: the credentials did not verify")
    return parse_statements(load_json(body))


def _authorization(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "authorization":
            return value
    return ""


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _authorized(header: str, expected: PushCredentials) -> bool:
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if isinstance(expected, BearerSecret):
        return scheme.lower() == "bearer" and _same(value, expected.secret.get_secret_value())
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    username, colon, password = decoded.partition(":")
    user_ok = _same(username, expected.username)
    password_ok = _same(password, expected.password.get_secret_value())
    return bool(colon) and user_ok and password_ok
