"""Who may do what: roles, the permissions each grants, and the principal the server acts for."""

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """A principal's roles; `owner` is scoped to teams, the others are global."""

    ADMIN = "admin"
    PLATFORM = "platform"
    OWNER = "owner"
    REVIEWER = "reviewer"
    COMPLIANCE = "compliance"
    READER = "reader"


class Permission(StrEnum):
    """What a route or a use case needs; each role grants a fixed set (`GRANTS`)."""

    READ = "read"
    """Lessons, versions, recurrences, placements, signals, the rules in force, exports."""
    AUTHOR = "author"
    """Capture, edit, submit, revise and retire lessons (an owner: only its teams' lessons)."""
    REVIEW = "review"
    """Approve (the transferability check) and publish lessons."""
    OPERATE = "operate"
    """Queue and dead-letter operations, rule checks over the API, the team → members map."""
    WAIVE = "waive"
    """Exempt a team (or one work item) from a mandated lesson, until a date."""
    IMPORT = "import"
    """Import lesson files, which may carry published versions and their review records."""
    ADMINISTER = "administer"
    """Tokens."""


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.PLATFORM: frozenset({Permission.READ, Permission.OPERATE}),
    Role.OWNER: frozenset({Permission.READ, Permission.AUTHOR}),
    Role.REVIEWER: frozenset({Permission.READ, Permission.REVIEW}),
    Role.COMPLIANCE: frozenset({Permission.READ, Permission.WAIVE}),
    Role.READER: frozenset({Permission.READ}),
}


def roles_granting(permission: Permission) -> tuple[Role, ...]:
    """The roles that grant `permission`, in `Role` order (for "needs role …" answers)."""
    return tuple(role for role in Role if permission in GRANTS[role])


_TOKEN_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_token_name(name: str) -> str:
    """A token name as given, or ValueError: lower-case letters, digits, `.`, `_`, `-`."""
    if not _TOKEN_NAME.fullmatch(name):
        raise ValueError(
            "a token name is 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


MAX_PERSON = 190
"""So that `user:<name>` fits the 200 characters a recorded name may have."""
_BLANK_LOOKING = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0xFE00, 0xFE10))
)
"""Code points that print as nothing (or as blank) without being format characters."""


def normalise_person(raw: str) -> str:
    """A person's stable id from a name an identity proxy sends, or ValueError.

    NFKC-folded and case-folded, so `Mallory`, `mallory` and its full-width form are one
    person; invisible (format) and control characters are refused rather than dropped, since a
    name carrying them was not produced by an honest proxy.
    """
    folded = unicodedata.normalize("NFKC", raw).casefold().strip()
    if not folded or len(folded) > MAX_PERSON:
        raise ValueError(f"the user name is empty or longer than {MAX_PERSON} characters")
    if any(
        unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} or ord(ch) in _BLANK_LOOKING
        for ch in folded
    ):
        raise ValueError("the user name holds control or invisible characters")
    return folded


@dataclass(frozen=True, slots=True)
class Principal:
    """The one the server acts for: a token, a person behind the SSO proxy, a CLI operator, or
    Cairn itself. `id` is stable and compared; `label` is only recorded beside it."""

    id: str
    roles: frozenset[Role]
    teams: frozenset[str] = field(default_factory=frozenset)
    label: str | None = None

    def can(self, permission: Permission) -> bool:
        """Whether any of the principal's roles grants `permission`."""
        return any(permission in GRANTS[role] for role in self.roles)

    def may_author_for(self, team: str) -> bool:
        """Whether the principal may change lessons owned by `team`."""
        if Role.ADMIN in self.roles:
            return True
        return Role.OWNER in self.roles and team in self.teams


def parse_grant(text: str) -> tuple[Role, str | None]:
    """`reviewer` or `owner:payments` (a role, and the team an owner grant is scoped to)."""
    name, _, team = text.partition(":")
    try:
        role = Role(name)
    except ValueError:
        raise ValueError(f"{text!r}: unknown role (one of {', '.join(Role)})") from None
    if (role == Role.OWNER) != bool(team):
        raise ValueError(f"{text!r}: write owner:<team> for owners, and no team for other roles")
    return role, team or None


SYSTEM = Principal(id="cairn:system", roles=frozenset({Role.ADMIN}))
"""Cairn's own pipeline (capture from incidents, feedback): recorded as itself."""
