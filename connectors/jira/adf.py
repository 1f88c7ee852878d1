"""Lessons as an ADF task list under a "Lessons learned" heading; everything else left alone.

Pure functions over Atlassian Document Format (JSON). Cairn owns exactly one `taskList`: the one
right after the first top-level heading reading "Lessons learned". Its items whose `localId`
starts with `cairn-` are Cairn's, derived from the placement id; other items in it (an engineer's
own) and every other node of the description are kept as they are. Text is placed in `text`
nodes, never parsed as markup, so a lesson cannot inject structure; control characters are
stripped. A `cairn-` id anywhere else in the description is ignored (a copy cannot forge a tick).

Required lessons placed past the fatigue budget (`Item.grouped`) share one grouped task item
(`localId` `cairn-group-…`) after the others: it says how many lessons it holds and links to the
work item's list of lessons, and shows no lesson text. Which placements it stands for is kept in
the issue's `cairn.lessons` property (each placement's `localId` is the grouped item's), written in
the same request as the description, so `marks` reads the grouped item once per lesson: DONE →
each ticked, TODO → each open, "N/A: reason" → each dismissed with the reason (see
`connectors.grouping`). While it is open, its text is brought up to date (the count) up to its
link; whatever the engineer wrote after the link is kept.
"""

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors import grouping
from core.feedback import ItemMark
from core.lesson import Mandate

HEADING = "Lessons learned"
ID_PREFIX = "cairn-"
GROUP_PREFIX = ID_PREFIX + "group-"
LIST_ID = "cairn-lessons"
# Controls, line separators and bidirectional overrides (U+202A-U+202E, U+2066-U+2069, marks):
# the last can make a placed item read differently from what it says.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]+"
)
_DISMISSAL = re.compile(r"\bN/A\s*:\s*(?P<reason>\S.*)$", re.IGNORECASE | re.DOTALL)
_MANDATE = {
    Mandate.REQUIRED: "Required",
    Mandate.REVIEW_AND_JUSTIFY: "Review; if it does not apply, dismiss it with a reason",
    Mandate.INVITED: "Suggested",
}
MAX_TEXT = 2_000
MAX_REASON = 2_000

Node = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Item:
    """One lesson as the checklist shows it."""

    placement_id: str
    title: str
    text: str
    mandate: Mandate
    rule_id: str
    due_at: datetime | None = None
    url: str | None = None
    grouped: bool = False
    """Placed past the fatigue budget: shown in a grouped task item (see `arrange`)."""
    list_url: str | None = None
    """Where the work item's lessons are listed: a grouped task item links there."""
    version: int = 1
    """The lesson version the item shows."""
    revised_from: int | None = None
    """The version first placed, once a revision updated the item: shown "updated to vN"."""
    reopened: str | None = None
    """Why a revision put the item back to open: shown "reopened: …", unticked once."""


@dataclass(frozen=True, slots=True)
class Group:
    """Lessons past the fatigue budget shown as one task item that links to their list."""

    local_id: str
    members: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """What an engineer did to one of Cairn's task items."""

    mark: ItemMark
    reason: str | None = None


def local_id(placement_id: str) -> str:
    """The task item's `localId`: stable for a placement, so a retry finds its own item."""
    return ID_PREFIX + hashlib.sha256(placement_id.encode()).hexdigest()[:24]


def group_id(first: str) -> str:
    """The `localId` of a new grouped task item, from the placement id of its first lesson."""
    return GROUP_PREFIX + hashlib.sha256(f"group|{first}".encode()).hexdigest()[:24]


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """One line of plain text: control characters become spaces; at most `limit` characters."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def _neutral(value: str) -> str:
    # Our own text must never read as an engineer's dismissal.
    return re.sub(r"N/A\s*:", "N/A -", value, flags=re.IGNORECASE)


def _text(value: str, href: str | None = None) -> Node:
    node: Node = {"type": "text", "text": value}
    if href is not None:
        node["marks"] = [{"type": "link", "attrs": {"href": href}}]
    return node


def render(item: Item) -> list[Node]:
    """The inline nodes of one task item: title, text, mandate, why (rule), due date, link."""
    title = _neutral(clean(item.title, 300)) or "Lesson"
    # Templates usually start with the title ("{{ lesson.title }}: …"): show it once.
    body = _neutral(clean(item.text.removeprefix(item.title).lstrip(": ")))
    parts = [f"{title}: {body}" if body and body != title else title]
    revision = _revision(item)
    if revision is not None:
        parts.append(revision)
    parts.append(_MANDATE[item.mandate])
    parts.append(f"why: rule {clean(item.rule_id, 200)}")
    if item.due_at is not None:
        parts.append(f"due {item.due_at.date().isoformat()}")
    # Neutralised once more as a whole: a title ending in "N/A" joined to its text by ": "
    # would otherwise read back as the engineer's dismissal.
    nodes = [_text(_neutral(" — ".join(parts)))]
    if item.url is not None and item.url.startswith(("https://", "http://")):
        nodes += [_text(" — "), _text("lesson", clean(item.url, 2_000))]
    return nodes


def render_group(group: Group) -> list[Node]:
    """The inline nodes of a grouped task item: how many lessons, mandate, due date, the link
    to their list (always last)."""
    members = group.members
    parts = [
        f"{grouping.label(members)}: grouped to keep this list short; "
        "tick this once every one of them is handled",
        _MANDATE[grouping.mandate(members)],
    ]
    due = grouping.due(members)
    if due is not None:
        parts.append(f"due {due.date().isoformat()}")
    nodes = [_text(_neutral(" — ".join(parts)))]
    url = grouping.list_url(members)
    if url is not None and url.startswith(("https://", "http://")):
        nodes += [_text(" — "), _text("the list", clean(url, 2_000))]
    return nodes


def _revision(item: Item) -> str | None:
    """The revision mark an item shows: "reopened: …" or "updated to vN" (None: never revised)."""
    if item.reopened is not None:
        return f"reopened: {clean(item.reopened, 500)}"
    if item.revised_from is not None:
        return f"updated to v{item.version}"
    return None


def reopen_mark(item: Item) -> str:
    """The words a reopened item shows, as rendered: found in the target, it was reopened."""
    return _neutral(f"reopened: {clean(item.reopened or '', 500)}")


def _revised(node: Node, item: Item) -> Node:
    """A task item of a revised lesson brought to its new text: Cairn's part up to and including
    its link is rendered again, the engineer's words after the link and the tick are kept. A
    reopening unticks it once: an item already showing the reason is left as the engineer has
    it (ticked again since, say). A dismissed item is left alone (a reason may be anywhere)."""
    content = node.get("content")
    fresh = render(item)
    if (
        not isinstance(content, list)
        or not _links(fresh[-1])
        or read_mark(node).mark == ItemMark.DISMISSED
    ):
        return node
    end = next((i for i, child in enumerate(content) if _links(child)), None)
    if end is None:
        return node
    attrs = dict(node.get("attrs") or {})
    if item.reopened is not None and reopen_mark(item) not in plain_text(
        {"content": content[: end + 1]}
    ):
        attrs["state"] = "TODO"
    if content[: end + 1] == fresh and attrs == node.get("attrs"):
        return node
    return {**node, "attrs": attrs, "content": fresh + content[end + 1 :]}


def task_item(item: Item) -> Node:
    """A fresh, unticked task item for `item`."""
    return {
        "type": "taskItem",
        "attrs": {"localId": local_id(item.placement_id), "state": "TODO"},
        "content": render(item),
    }


def group_item(group: Group) -> Node:
    """A fresh, unticked grouped task item."""
    return {
        "type": "taskItem",
        "attrs": {"localId": group.local_id, "state": "TODO"},
        "content": render_group(group),
    }


def _links(node: object) -> bool:
    marks = node.get("marks") if isinstance(node, dict) else None
    return isinstance(marks, list) and any(
        isinstance(m, dict) and m.get("type") == "link" for m in marks
    )


def _refreshed(node: Node, group: Group) -> Node:
    """A grouped task item brought up to date while it is open: Cairn's text up to and
    including its link is rendered again; the engineer's words after the link are kept."""
    content = node.get("content")
    fresh = render_group(group)
    if (
        not isinstance(content, list)
        or not _links(fresh[-1])
        or read_mark(node).mark != ItemMark.OPEN
    ):
        return node  # marked (a reason may be anywhere in it), or no link ends Cairn's part
    end = next((i for i, child in enumerate(content) if _links(child)), None)
    if end is None or content[: end + 1] == fresh:
        return node
    return {**node, "content": fresh + content[end + 1 :]}


def empty_doc() -> Node:
    """An empty ADF document."""
    return {"type": "doc", "version": 1, "content": []}


def plain_text(node: object) -> str:
    """The text of a node and its children, concatenated."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text" and isinstance(node.get("text"), str):
        return str(node["text"])
    if node.get("type") == "hardBreak":
        return "\n"
    content = node.get("content")
    if not isinstance(content, list):
        return ""
    return "".join(plain_text(child) for child in content)


def _is_heading(node: object) -> bool:
    return (
        isinstance(node, dict)
        and node.get("type") == "heading"
        and clean(plain_text(node)).casefold() == HEADING.casefold()
    )


def _section(content: list[Any]) -> tuple[int | None, int | None]:
    """Index of our heading and of our task list after it (None when absent).

    The list is the node right after the heading, or, when an engineer wrote something in
    between, the first task list after it carrying Cairn's list id.
    """
    for index, node in enumerate(content):
        if _is_heading(node):
            for later in range(index + 1, len(content)):
                following = content[later]
                if isinstance(following, dict) and following.get("type") == "taskList":
                    attrs = following.get("attrs")
                    ours = isinstance(attrs, dict) and attrs.get("localId") == LIST_ID
                    if later == index + 1 or ours:
                        return index, later
            return index, None
    return None, None


def _item_id(node: object) -> str | None:
    if not isinstance(node, dict) or node.get("type") != "taskItem":
        return None
    attrs = node.get("attrs")
    value = attrs.get("localId") if isinstance(attrs, dict) else None
    return value if isinstance(value, str) else None


def _content(doc: object) -> list[Any]:
    if isinstance(doc, dict) and isinstance(doc.get("content"), list):
        return list(doc["content"])
    return []


def apply(doc: object, items: Sequence[Item], groups: Sequence[Group] = ()) -> Node:
    """`doc` showing exactly `items` and `groups` in Cairn's task list, everything else as it was.

    Existing items keep their state and any text the engineer added; new ones are appended;
    Cairn items not in `items` (withdrawn, or forged ids) are removed. With nothing to show, the
    heading and list go too (unless the list holds an engineer's own items).
    """
    result: Node = copy.deepcopy(doc) if isinstance(doc, dict) else empty_doc()
    if result.get("type") != "doc":
        result = empty_doc()
    result.setdefault("version", 1)
    content = _content(result)
    heading, listed = _section(content)
    wanted: dict[str, Item | Group] = {local_id(item.placement_id): item for item in items}
    wanted.update({group.local_id: group for group in groups})
    existing = content[listed]["content"] if listed is not None else []
    kept: list[Any] = []
    seen: set[str] = set()
    for node in existing if isinstance(existing, list) else []:
        node_id = _item_id(node)
        if node_id is not None and node_id.startswith(ID_PREFIX):
            if node_id not in wanted or node_id in seen:
                continue  # withdrawn, forged or duplicated: not shown
            seen.add(node_id)
            shown = wanted[node_id]
            if isinstance(shown, Group):
                node = _refreshed(node, shown)
            elif shown.revised_from is not None:
                node = _revised(node, shown)
        kept.append(node)
    kept += [
        group_item(shown) if isinstance(shown, Group) else task_item(shown)
        for key, shown in wanted.items()
        if key not in seen
    ]
    if heading is None:
        if not kept:
            return result
        content += [
            {"type": "heading", "attrs": {"level": 3}, "content": [_text(HEADING)]},
            {"type": "taskList", "attrs": {"localId": LIST_ID}, "content": kept},
        ]
    elif kept:
        task_list = {"type": "taskList", "attrs": {"localId": LIST_ID}, "content": kept}
        if listed is None:
            content.insert(heading + 1, task_list)
        else:
            content[listed] = {**content[listed], "content": kept}
    elif listed is not None:
        del content[listed]  # our list emptied: list and heading go, anything between stays
        del content[heading]
    result["content"] = content
    return result


def _listed(doc: object) -> dict[str, Node]:
    """The task items of Cairn's task list by `localId` (the first of each), in list order."""
    content = _content(doc)
    _heading, listed = _section(content)
    by_id: dict[str, Node] = {}
    for node in [] if listed is None else content[listed].get("content") or []:
        node_id = _item_id(node)
        if node_id is not None and node_id not in by_id:
            by_id[node_id] = node
    return by_id


def marks(
    doc: object, placement_ids: Iterable[str], located: Mapping[str, str] | None = None
) -> dict[str, Mark]:
    """The mark of each placement's item in Cairn's task list (absent items are left out).

    `located` names the task item showing a placement when it is not its own (a grouped one,
    as `located` reads it from the `cairn.lessons` property): that item's mark is its mark.
    """
    by_id = _listed(doc)
    found: dict[str, Mark] = {}
    for placement_id in placement_ids:
        node = by_id.get((located or {}).get(placement_id) or local_id(placement_id))
        if node is not None:
            found[placement_id] = read_mark(node)
    return found


def located(recorded: Mapping[str, Any]) -> dict[str, str]:
    """Placement id → the `localId` of the task item showing it, from the `cairn.lessons`
    property's items (ids that are not Cairn's are left out)."""
    found: dict[str, str] = {}
    for placement_id, value in recorded.items():
        node_id = value.get("localId") if isinstance(value, dict) else None
        if isinstance(node_id, str) and node_id.startswith(ID_PREFIX):
            found[placement_id] = node_id
    return found


def arrange(
    doc: object, items: Sequence[Item], where: Mapping[str, str]
) -> tuple[Node, dict[str, str]]:
    """`doc` showing `items`, the grouped ones in grouped task items; and the `localId` of the
    task item showing each item.

    `where` is where each placement was shown before (see `located`): a grouped task item keeps
    its lessons, and once ticked or dismissed takes no newcomers (they start a new one).
    """
    own = [item for item in items if not item.grouped]
    grouped = {item.placement_id: item for item in items if item.grouped}
    ids = {item.placement_id: local_id(item.placement_id) for item in own}
    groups: list[Group] = []
    if grouped:
        nodes = _listed(doc)
        members: dict[str, list[str]] = {}
        for placement_id, node_id in where.items():
            if node_id.startswith(GROUP_PREFIX) and node_id in nodes:
                members.setdefault(node_id, []).append(placement_id)
        before = [
            (node_id, members[node_id], read_mark(node).mark != ItemMark.OPEN)
            for node_id, node in nodes.items()
            if node_id in members
        ]
        for found, placement_ids in grouping.partition(list(grouped), before):
            key = found or group_id(placement_ids[0])
            groups.append(Group(key, tuple(grouped[p] for p in placement_ids)))
            ids.update(dict.fromkeys(placement_ids, key))
    return apply(doc, own, groups), ids


def read_mark(node: Mapping[str, Any]) -> Mark:
    """DONE → ticked, TODO → open; "N/A: reason" written in the item → dismissed with reason."""
    dismissal = _DISMISSAL.search(plain_text(dict(node)))
    if dismissal is not None:
        reason = clean(dismissal.group("reason"), MAX_REASON)
        if reason:
            return Mark(ItemMark.DISMISSED, reason)
    attrs = node.get("attrs")
    state = attrs.get("state") if isinstance(attrs, dict) else None
    return Mark(ItemMark.TICKED if state == "DONE" else ItemMark.OPEN)


def document(item: Item) -> Node:
    """A document with one paragraph showing `item` (the description of a lesson sub-task)."""
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": render(item)}],
    }
