"""What every learning-management system client provides: find a learner, enrol them in a
lesson's training with a due date, withdraw the enrolment, and read whether they completed it.

Moodle (`connectors/moodle/`) and Canvas (`connectors/canvas/`) implement it; completion can also
arrive as xAPI statements from a learning record store (`connectors/xapi/`). Every call is safe
to repeat: enrolling a learner already enrolled changes nothing and returns the same handle.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Completion(StrEnum):
    """Where a learner stands in one training module."""

    OPEN = "open"
    COMPLETED = "completed"
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A learner enrolled in a module: the LMS's user id, the module and the handle to track."""

    user_id: str
    module: str
    handle: str
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """What the LMS reports for one enrolment."""

    completion: Completion
    at: datetime | None = None
    """When it was completed or failed, when the LMS says."""
    detail: str | None = None


class LmsClient(Protocol):
    """One LMS, reached through its real API with Cairn's credentials."""

    name: str
    """`moodle` or `canvas`: the key a lesson's training module is named under."""

    def find_user(self, email: str) -> str | None:
        """The LMS's user id for this email, or None when the LMS has no such user."""
        ...

    def enrol(self, user_id: str, module: str, due_at: datetime | None) -> Enrolment:
        """Enrol the user in the module (a course, or a course's assignment) with a due date;
        idempotent. Raises TransientError (retry) or PayloadError (never possible)."""
        ...

    def withdraw(self, enrolment: Enrolment) -> bool:
        """Take the enrolment back where the LMS allows it (True), else False (Cairn then only
        marks the placement withdrawn)."""
        ...

    def progress(self, enrolment: Enrolment) -> Progress:
        """Whether the learner completed, passed or failed the module."""
        ...
