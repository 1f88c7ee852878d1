"""The overdue reminder as a Jira comment: an ADF document naming each item, and the comment
property `cairn.reminder` listing its effect keys, so a retry reads them before posting."""

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.jira.adf import Node, clean
from connectors.target import Reminder

PROPERTY = "cairn.reminder"


def keys(comments: Iterable[dict[str, Any]]) -> set[str]:
    """Every reminder key recorded in the `cairn.reminder` property of these raw comments."""
    found: set[str] = set()
    for comment in comments:
        for prop in comment.get("properties") or []:
            if not isinstance(prop, dict) or prop.get("key") != PROPERTY:
                continue
            value = prop.get("value")
            listed = value.get("keys") if isinstance(value, dict) else None
            if isinstance(listed, list):
                found.update(k for k in listed if isinstance(k, str))
    return found


def _text(value: str, *marks: dict[str, Any]) -> Node:
    node: Node = {"type": "text", "text": value}
    if marks:
        node["marks"] = list(marks)
    return node


def _paragraph(*content: Node) -> Node:
    return {"type": "paragraph", "content": list(content)}


def _item(reminder: Reminder) -> Node:
    parts = [
        _text(clean(reminder.title, 300) or "Lesson", {"type": "strong"}),
        _text(
            f" — {reminder.mandate.value.replace('_', ' ')}"
            f" — due {reminder.due_at.date().isoformat()}"
        ),
    ]
    url = reminder.lesson_url
    if url is not None and url.startswith(("https://", "http://")):
        link = {"type": "link", "attrs": {"href": clean(url, 2_000)}}
        parts += [_text(" — "), _text("lesson", link)]
    return {"type": "listItem", "content": [_paragraph(*parts)]}


def document(reminders: Sequence[Reminder]) -> Node:
    """The comment body: what is overdue, one bullet per item, and what to do about it."""
    several = len(reminders) > 1
    heading = f"Overdue lesson{'s' if several else ''}: "
    said = (
        f"{'these mandated items are' if several else 'this mandated item is'} past "
        f"{'their' if several else 'its'} due date and still open on this issue."
    )
    return {
        "type": "doc",
        "version": 1,
        "content": [
            _paragraph(_text(heading, {"type": "strong"}), _text(said)),
            {"type": "bulletList", "content": [_item(r) for r in reminders]},
            _paragraph(
                _text(
                    "Tick it in the Lessons learned list of the description (or finish its "
                    "sub-task) once it is handled; if it does not apply, mark it not applicable "
                    "with a reason."
                )
            ),
        ],
    }


def request(reminders: Sequence[Reminder]) -> dict[str, Any]:
    """The `POST issue/KEY/comment` body: the document and the property naming its keys."""
    return {
        "body": document(reminders),
        "properties": [{"key": PROPERTY, "value": {"keys": [r.key for r in reminders]}}],
    }
