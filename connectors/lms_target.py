"""The LMS as a target: a learner's "work item" is their training, and placing a lesson there
enrols them in the lesson's module with the due date.

A learner work item is `lms:<team>/<person>`; its `assignee` is the learner's email and its
labels may carry the learner's id in an LMS as `lms-user:<lms>:<id>` (from the team map), which
saves a look-up. A placement's handle is `<lms>:<user id>:<module>`, enough to withdraw the
enrolment or read its progress later without asking the LMS who the learner was.

Completion does not come back through `observe`: `router/lms/progress.py` polls the LMS for
open placements, and xAPI statements arrive from a learning record store.

A revision of the lesson does not reach an assignment: the course is the LMS's own content,
edited there, and a learner part-way through it is not moved to another module or re-enrolled.
The placement keeps the version it was assigned at (`placement.outdated` in the audit log says
a newer one exists).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.lms import Enrolment, LmsClient
from connectors.target import EmbedEntry, EmbedResult
from core.errors import PayloadError
from core.feedback import ItemObservation
from core.team import Member
from core.work import System, WorkItem

USER_LABEL = "lms-user:"
log = logging.getLogger("cairn.lms")


def learner_ref(team: str, person: str) -> str:
    """The work item ref of one learner in one team."""
    return f"lms:{team}/{person}"


def learner_item(team: str, member: Member) -> WorkItem:
    """The work item a learner's training assignments are placed in."""
    return WorkItem(
        system=System.LMS,
        ref=learner_ref(team, member.person),
        project=team,
        type="learner",
        title=member.name or member.person,
        team=team,
        assignee=member.email or member.person,
        labels=tuple(sorted(f"{USER_LABEL}{lms}:{uid}" for lms, uid in member.lms_ids.items())),
    )


@dataclass(frozen=True, slots=True)
class Handle:
    """What a placement's handle says: which LMS, which user, which module, and the LMS's own
    handle of the enrolment (Canvas's enrollment id, Moodle's `course/user`)."""

    lms: str
    user_id: str
    module: str
    native: str = ""

    def __str__(self) -> str:
        return f"{self.lms}:{self.user_id}:{self.module}|{self.native}"

    @classmethod
    def parse(cls, text: str) -> "Handle | None":
        """The handle, or None for one not made by an LMS target."""
        head, _, native = text.partition("|")
        lms, sep, rest = head.partition(":")
        user_id, sep2, module = rest.partition(":")
        if not (sep and sep2 and lms and user_id and module):
            return None
        return cls(lms, user_id, module, native)

    def enrolment(self) -> Enrolment:
        """The enrolment the handle stands for."""
        return Enrolment(user_id=self.user_id, module=self.module, handle=self.native)


def known_user_id(item: WorkItem, lms: str) -> str | None:
    """The learner's id in `lms` when the team map gave it."""
    prefix = f"{USER_LABEL}{lms}:"
    for label in item.labels:
        if label.startswith(prefix) and len(label) > len(prefix):
            return label[len(prefix) :]
    return None


class LmsTarget:
    """Enrols learners through one LMS client; every call is safe to repeat."""

    system = System.LMS
    own_actor: str | None = None

    def __init__(self, client: LmsClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"LmsTarget({self.client.name})"

    def complete(self, item: WorkItem) -> WorkItem:
        """A learner item needs nothing filled in."""
        return item

    def embed(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> EmbedResult:
        """Enrol the learner in each entry's module for this LMS; withdraw retired ones.

        An entry whose lesson names no module in this LMS gets no handle (the placement fails
        with that reason); a learner the LMS does not know gets none either.
        """
        name = self.client.name
        reads = writes = 0
        user_id = known_user_id(item, name)
        if user_id is None and item.assignee:
            user_id = self.client.find_user(item.assignee)
            reads += 1
        handles: dict[str, str] = {}
        if user_id is None:
            return EmbedResult(handles={}, writes=0, reads=reads)
        for entry in entries:
            module = dict(entry.modules).get(name)
            if module is None:
                continue
            if entry.withdrawn:
                placed = Handle.parse(entry.handle or "")
                if placed is not None:
                    self.client.withdraw(placed.enrolment())
                    writes += 1
                continue
            try:
                enrolment = self.client.enrol(user_id, module, entry.due_at)
            except PayloadError as exc:
                # This module can never take the learner (a deleted course, an assignment that
                # does not exist): that placement fails, the learner's other ones still go in.
                log.warning("%s: %s cannot be enrolled in %s: %s", name, user_id, module, exc)
                continue
            writes += 1
            handles[entry.placement_id] = str(Handle(name, user_id, module, enrolment.handle))
        return EmbedResult(handles=handles, writes=writes, reads=reads)

    def observe(self, item: WorkItem) -> tuple[ItemObservation, ...]:
        """Progress is polled per placement (router/lms/progress.py), not per work item."""
        return ()
