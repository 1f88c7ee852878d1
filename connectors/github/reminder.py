"""The overdue reminder as a pull-request comment: Markdown naming each item, hidden markers.

Each reminder carries `<!-- cairn:reminder:<key> -->`, its effect key, so a retry reads the
comments first and finds the ones it already posted.
"""

import re
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote

from connectors.github.section import escape
from connectors.target import Reminder

MARKER_PREFIX = "cairn:reminder:"
_MARKER = re.compile(r"<!-- cairn:reminder:(?P<key>[A-Za-z0-9_.:@~%-]+) -->")


def marker(key: str) -> str:
    """The hidden marker of one reminder."""
    return f"<!-- {MARKER_PREFIX}{quote(key, safe='_.:@~-')} -->"


def keys(bodies: Iterable[str | None]) -> set[str]:
    """Every reminder key found in these comment bodies."""
    return {unquote(m.group("key")) for body in bodies for m in _MARKER.finditer(body or "")}


def _line(reminder: Reminder) -> str:
    parts = [f"- **{escape(reminder.title)}**", reminder.mandate.value.replace("_", " ")]
    parts.append(f"due {reminder.due_at.date().isoformat()}")
    line = " — ".join(parts)
    if reminder.lesson_url:
        line += f" · [Lesson]({quote(reminder.lesson_url, safe=':/?&=#%+@,;~')})"
    return line


def render(reminders: Sequence[Reminder]) -> str:
    """The comment body: markers, a heading line, one line per overdue item, what to do."""
    several = len(reminders) > 1
    lines = [marker(r.key) for r in reminders]
    lines.append(
        f"**Overdue lesson{'s' if several else ''}:** "
        f"{'these mandated items are' if several else 'this mandated item is'} past "
        f"{'their' if several else 'its'} due date and still open on this pull request."
    )
    lines.append("")
    lines.extend(_line(r) for r in reminders)
    lines.append("")
    lines.append(
        "_Tick it in the Lessons section of the description once it is handled; "
        "if it does not apply, write `N/A: reason` after it._"
    )
    return "\n".join(lines)
