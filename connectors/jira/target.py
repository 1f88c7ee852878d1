"""Lessons into Jira issues: a checklist in the description, or one sub-task per lesson.

Every call goes through the `jira` library (its client, or its authenticated session for the two
REST shapes it has no method for: an edit or create carrying issue properties in the same
request). Requests per `embed`, checklist form: one read (description, `updated`, sub-task list
and the `cairn.lessons` property together); when the description must change, one light read of
`updated` just before writing and one write carrying both the description and the property.
Nothing changed: no write. Sub-task form: a JQL search for existing `cairn-lesson` sub-tasks
(skipped when the parent has none) and one create per missing lesson, each carrying its
placement id in the `cairn.lesson` property, so a retry finds instead of duplicating.

Race with a human edit: Jira Cloud has no conditional update. If `updated` moved between the
read and the write, the issue is re-read and the list re-applied to the fresh description (the
engineer's text wins); after a few rounds the call is retried later. What remains is the short
gap between that check and the write.

`remind` reads the issue's comments with their properties (paged) and posts at most one comment
(ADF, with the `cairn.reminder` property naming its reminder keys) for the overdue items not
found there.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jira import JIRA

from connectors.jira import adf, reminder
from connectors.jira.client import Credentials, JiraCalls
from connectors.jira.webhook import LESSON_LABEL
from connectors.retrying import RetryPolicy
from connectors.target import EmbedEntry, EmbedResult, Reminder, RemindResult
from core.errors import PayloadError, TransientError
from core.feedback import ItemMark, ItemObservation
from core.placement import EmbeddingForm
from core.work import System, WorkItem

PROPERTY = "cairn.lessons"
SUBTASK_PROPERTY = "cairn.lesson"
RACE_ROUNDS = 3
WITHDRAWN_PREFIX = "[withdrawn] "
DISMISSING_RESOLUTIONS = frozenset({"won't do", "won't fix", "declined", "not applicable"})
_READ_FIELDS = "description,updated,subtasks"


@dataclass(slots=True)
class _Tally:
    reads: int = 0
    writes: int = 0


def _key(item: WorkItem) -> str:
    if item.system != System.JIRA:
        raise PayloadError(f"{item.ref} is not a Jira issue")
    return item.ref.removeprefix("jira:")


def _record(raw: dict[str, Any]) -> dict[str, Any]:
    value = (raw.get("properties") or {}).get(PROPERTY)
    items = value.get("items") if isinstance(value, dict) else None
    return {"version": 1, "items": dict(items) if isinstance(items, dict) else {}}


def _item(entry: EmbedEntry) -> adf.Item:
    return adf.Item(
        placement_id=entry.placement_id,
        title=entry.title,
        text=entry.text,
        mandate=entry.mandate,
        rule_id=entry.rule_id,
        due_at=entry.due_at,
        url=entry.lesson_url,
        grouped=entry.grouped,
        list_url=entry.list_url,
        version=entry.lesson_version,
        revised_from=entry.revised_from,
        reopened=entry.reopened,
    )


class JiraTarget:
    """The Target for Jira Cloud (REST v3 through the `jira` library)."""

    system = System.JIRA

    def __init__(
        self,
        credentials: Credentials,
        *,
        account_id: str | None = None,
        team_field: str | None = None,
        subtask_type: str = "Subtask",
        policy: RetryPolicy | None = None,
    ) -> None:
        self.calls = JiraCalls(credentials, policy)
        self.own_actor = account_id
        self.team_field = team_field
        self.subtask_type = subtask_type

    def __repr__(self) -> str:
        return f"JiraTarget({self.calls.credentials!r}, account_id={self.own_actor!r})"

    # --- reads -------------------------------------------------------------------------------

    def _read(self, key: str, tally: _Tally, fields: str = _READ_FIELDS) -> dict[str, Any]:
        tally.reads += 1
        raw = self.calls.run(
            f"read {key}", lambda c: c.issue(key, fields=fields, properties=PROPERTY).raw
        )
        return dict(raw or {})

    def _search(self, jql: str, tally: _Tally) -> list[dict[str, Any]]:
        """Every issue the JQL finds (a few, for sub-tasks), with the `cairn.lesson` property."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            tally.reads += 1
            page = self.search_page(
                jql, token, fields="status,resolution,summary,labels,description"
            )
            found += page.get("issues") or []
            token = page.get("nextPageToken")
            if not token or page.get("isLast", True):
                return found

    def search_page(
        self, jql: str, token: str | None, *, fields: str, size: int = 100
    ) -> dict[str, Any]:
        """One page of `GET /search/jql` (used by backfill too): issues and `nextPageToken`."""

        def call(client: JIRA) -> dict[str, Any]:
            page = client.enhanced_search_issues(
                jql,
                nextPageToken=token,
                maxResults=size,
                fields=fields,
                properties=SUBTASK_PROPERTY,
                json_result=True,
            )
            return dict(page) if isinstance(page, dict) else {}

        return self.calls.run("search issues", call)

    def _lesson_subtasks(self, key: str, tally: _Tally) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for issue in self._search(f'parent = {key} AND labels = "{LESSON_LABEL}"', tally):
            value = (issue.get("properties") or {}).get(SUBTASK_PROPERTY)
            placement = value.get("placement_id") if isinstance(value, dict) else None
            if isinstance(placement, str) and placement not in found:
                found[placement] = issue
        return found

    # --- writes ------------------------------------------------------------------------------

    def _send(self, what: str, method: str, path: str, body: dict[str, Any], tally: _Tally) -> Any:
        tally.writes += 1
        idempotent = method != "POST"  # a PUT states the whole value; a POST creates

        def call(client: JIRA) -> Any:
            url = client._get_url(path)
            response = client._session.request(method, url, data=json.dumps(body))
            return response.json() if response.content else None

        return self.calls.run(what, call, idempotent=idempotent)

    def _create_subtask(self, item: WorkItem, key: str, entry: EmbedEntry, tally: _Tally) -> str:
        summary = adf.clean(f"Lesson: {entry.title}", 250) or "Lesson"
        fields: dict[str, Any] = {
            "project": {"key": item.project},
            "parent": {"key": key},
            "issuetype": {"name": self.subtask_type},
            "summary": summary,
            "description": adf.document(_item(entry)),
            "labels": [LESSON_LABEL],
        }
        if entry.due_at is not None:
            fields["duedate"] = entry.due_at.date().isoformat()
        value = {
            "placement_id": entry.placement_id,
            "lesson": f"{entry.lesson_id}@{entry.lesson_version}",
        }
        body = {"fields": fields, "properties": [{"key": SUBTASK_PROPERTY, "value": value}]}
        created = self._send(f"create a sub-task of {key}", "POST", "issue", body, tally)
        new_key = created.get("key") if isinstance(created, dict) else None
        if not isinstance(new_key, str):
            raise PayloadError(f"Jira created a sub-task of {key} without a key")
        return new_key

    def _revise_subtask(self, found: dict[str, Any], entry: EmbedEntry, t: _Tally) -> None:
        """Show a revised lesson in its sub-task: the description rewritten (status kept), and
        for a reopening a done sub-task moved back to the first open status first, so a retry
        after a crash between the two finds it open and writes only the description."""
        key, fields = str(found["key"]), found.get("fields") or {}
        wanted = adf.document(_item(entry))
        before = fields.get("description")
        if before == wanted:
            return
        done = ((fields.get("status") or {}).get("statusCategory") or {}).get("key") == "done"
        mark = adf.reopen_mark(_item(entry))
        if entry.reopened is not None and done and mark not in adf.plain_text(before):
            self._reopen(key, t)
        self._send(f"revise {key}", "PUT", f"issue/{key}", {"fields": {"description": wanted}}, t)

    def _reopen(self, key: str, t: _Tally) -> None:
        t.reads += 1
        moves = self.calls.run(f"read the transitions of {key}", lambda c: c.transitions(key))
        target = next(
            (
                str(move["id"])
                for move in moves or []
                if ((move.get("to") or {}).get("statusCategory") or {}).get("key") == "new"
            ),
            None,
        )
        if target is None:
            raise PayloadError(f"{key} has no transition back to an open status")
        t.writes += 1
        self.calls.run(f"reopen {key}", lambda c: c.transition_issue(key, target))

    def _subtasks(
        self, item: WorkItem, key: str, raw: dict[str, Any], entries: list[EmbedEntry], t: _Tally
    ) -> dict[str, str]:
        has_any = bool((raw.get("fields") or {}).get("subtasks"))
        existing = self._lesson_subtasks(key, t) if has_any else {}
        handles: dict[str, str] = {}
        for entry in entries:
            found = existing.get(entry.placement_id)
            if entry.withdrawn:
                summary = str((found or {}).get("fields", {}).get("summary") or "")
                if found is not None and not summary.startswith(WITHDRAWN_PREFIX):
                    body = {"fields": {"summary": adf.clean(WITHDRAWN_PREFIX + summary, 250)}}
                    self._send(f"withdraw {found['key']}", "PUT", f"issue/{found['key']}", body, t)
                continue
            if found is not None:
                handles[entry.placement_id] = str(found["key"])
                if entry.revised_from is not None:
                    self._revise_subtask(found, entry, t)
            else:
                handles[entry.placement_id] = self._create_subtask(item, key, entry, t)
        return handles

    def _checklist(
        self, key: str, raw: dict[str, Any], entries: list[EmbedEntry], t: _Tally
    ) -> dict[str, str]:
        """Show `entries` in the description's list; the `localId` showing each one."""
        for _round in range(RACE_ROUNDS):
            fields = raw.get("fields") or {}
            before = fields.get("description")
            shown = [e for e in entries if not e.withdrawn]
            record = _record(raw)
            where = adf.located(record["items"])
            after, ids = adf.arrange(before, [_item(e) for e in shown], where)
            changed = after != before and not (before is None and not after["content"])
            wanted = {
                e.placement_id: {
                    "localId": ids[e.placement_id],
                    "lesson": f"{e.lesson_id}@{e.lesson_version}",
                    "form": e.form.value,
                }
                for e in shown
            }
            new_record = {"version": 1, "items": wanted}
            if not changed:
                if new_record != record:
                    path = f"issue/{key}/properties/{PROPERTY}"
                    self._send(f"record lessons on {key}", "PUT", path, new_record, t)
                return ids
            fresh = self._read(key, t, fields="updated")
            if (fresh.get("fields") or {}).get("updated") != fields.get("updated"):
                raw = self._read(key, t)  # a human edit raced ours: apply to their version
                continue
            body = {
                "fields": {"description": after},
                "properties": [{"key": PROPERTY, "value": new_record}],
            }
            self._send(f"write lessons into {key}", "PUT", f"issue/{key}", body, t)
            return ids
        raise TransientError(f"{key} kept changing while Cairn wrote to it", retry_after=5.0)

    # --- the Target protocol -----------------------------------------------------------------

    def complete(self, item: WorkItem) -> WorkItem:
        """Fill the team from the configured custom field when the webhook gave none (1 read)."""
        if self.team_field is None or item.team is not None:
            return item
        key, field = _key(item), self.team_field
        raw = self.calls.run(f"read {key}", lambda c: c.issue(key, fields=field).raw)
        value = ((raw or {}).get("fields") or {}).get(field)
        if isinstance(value, dict):
            value = value.get("value") or value.get("name") or value.get("title")
        team = adf.clean(value, 200) if isinstance(value, str) else ""
        return item.model_copy(update={"team": team}) if team else item

    def embed(self, item: WorkItem, entries: Sequence[EmbedEntry]) -> EmbedResult:
        """Show exactly `entries` in the issue; a repeat writes nothing."""
        key, tally = _key(item), _Tally()
        # A grouped lesson is in the list's grouped item, whatever its form.
        checklist = [e for e in entries if e.form == EmbeddingForm.JIRA_CHECKLIST or e.grouped]
        subtasks = [e for e in entries if e.form == EmbeddingForm.JIRA_SUBTASK and not e.grouped]
        raw = self._read(key, tally)
        handles = self._subtasks(item, key, raw, subtasks, tally) if subtasks else {}
        handles.update(self._checklist(key, raw, checklist, tally))
        return EmbedResult(handles=handles, writes=tally.writes, reads=tally.reads)

    def observe(self, item: WorkItem) -> tuple[ItemObservation, ...]:
        """The marks of Cairn's task items (a grouped item's once per lesson it stands for) and
        the state of its sub-tasks, re-read now."""
        key, tally = _key(item), _Tally()
        raw = self._read(key, tally)
        placed = _record(raw)["items"]
        # A grouped item's mark is the mark of each lesson the property places in it.
        description = (raw.get("fields") or {}).get("description")
        marks = adf.marks(description, placed, adf.located(placed))
        found = [
            ItemObservation(placement_id=p, mark=m.mark, reason=m.reason) for p, m in marks.items()
        ]
        if (raw.get("fields") or {}).get("subtasks"):
            for placement, issue in self._lesson_subtasks(key, tally).items():
                found.append(_subtask_mark(placement, issue.get("fields") or {}))
        return tuple(found)

    def remind(self, item: WorkItem, reminders: Sequence[Reminder]) -> RemindResult:
        """Comment on the issue naming the overdue items not reminded yet (the comments'
        `cairn.reminder` properties are read first); nothing when every one is there."""
        key, tally = _key(item), _Tally()
        found = reminder.keys(self._comments(key, tally))
        wanted = {r.key for r in reminders}
        missing = [r for r in reminders if r.key not in found]
        if not missing:
            return RemindResult(reminded=frozenset(wanted & found), reads=tally.reads)
        body = reminder.request(missing)
        posted = self._send(f"comment on {key}", "POST", f"issue/{key}/comment", body, tally)
        comment = posted.get("id") if isinstance(posted, dict) else None
        return RemindResult(
            reminded=frozenset(wanted),
            comment=None if comment is None else str(comment),
            writes=tally.writes,
            reads=tally.reads,
        )

    def _comments(self, key: str, tally: _Tally, size: int = 100) -> list[dict[str, Any]]:
        """Every comment of the issue, with its properties (`GET issue/KEY/comment`, paged)."""
        found: list[dict[str, Any]] = []
        while True:
            tally.reads += 1
            start = len(found)

            def page(client: JIRA, start: int = start) -> list[dict[str, Any]]:
                listed = client.comments(key, expand="properties", start_at=start, max_results=size)
                return [dict(comment.raw or {}) for comment in listed]

            read = self.calls.run(f"read the comments of {key}", page)
            found += read
            if len(read) < size:
                return found


def _subtask_mark(placement: str, fields: dict[str, Any]) -> ItemObservation:
    status = fields.get("status") or {}
    category = (status.get("statusCategory") or {}).get("key")
    resolution = (fields.get("resolution") or {}).get("name")
    if isinstance(resolution, str) and resolution.casefold() in DISMISSING_RESOLUTIONS:
        return ItemObservation(
            placement_id=placement, mark=ItemMark.DISMISSED, reason=f"resolved as {resolution}"
        )
    mark = ItemMark.TICKED if category == "done" else ItemMark.OPEN
    return ItemObservation(placement_id=placement, mark=mark)
