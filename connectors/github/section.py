"""The marker-fenced "Lessons" section of a pull-request body: render it, and read marks back.

Layout (GitHub hides the HTML comments)::

    <!-- cairn:lessons:start -->
    ### Lessons from past incidents
    _Tick an item once it is handled. If one does not apply, write `N/A: reason` after it._

    - [ ] **Title**: text <!-- cairn:item:pl_1 -->
      <sub>Why: rule r · Mandate: required · Due: 2026-12-01 · [Lesson](https://…)</sub>
    <!-- cairn:lessons:end -->

Everything on an item's lines after its marker, and every further line up to the next item, is
the engineer's: it is kept as written when the section is rendered again, and an `N/A: reason`
there dismisses the item. Lesson text is escaped so it can never mention people, close issues,
forge markers or carry HTML. Pure: no I/O.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from connectors.target import EmbedEntry
from core.feedback import ItemMark, ItemObservation

START = "<!-- cairn:lessons:start -->"
END = "<!-- cairn:lessons:end -->"
HEADING = "### Lessons from past incidents"
HELP = "_Tick an item once it is handled. If one does not apply, write `N/A: reason` after it._"
MARKER_PREFIX = "cairn:item:"
REASON_MAX = 500
_GAP = "\n\n"

_ZWJ = "\u200d"
_ITEM = re.compile(
    r"^[-*+] \[(?P<box>[ xX])\] (?P<shown>.*?)<!-- cairn:item:(?P<id>[A-Za-z0-9%_.:@~-]+) -->"
    r"(?P<tail>.*)$"
)
_DETAIL = re.compile(r"^  <sub>.*</sub>$")
_NOT_APPLICABLE = re.compile(r"\bN/A\s*:\s*(?P<reason>.*)$", re.IGNORECASE)
_MENTION = re.compile(r"@(?=[A-Za-z0-9_])")
_ISSUE_REF = re.compile(r"#(?=\d)")
_KEYWORD = re.compile(r"\b(?=(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\b)(\w)", re.IGNORECASE)
_NA_TEXT = re.compile(r"\b(n)(?=\s*/\s*a\s*:)", re.IGNORECASE)
_MARKDOWN = re.compile(r"([\\`*_\[\]|~])")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BIDI = re.compile(r"[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
"""Bidirectional controls: placed text must read in the order it is stored."""


def escape(text: str) -> str:
    """One line of inert Markdown: no HTML, mentions, closing keywords, markers or N/A marks."""
    text = _SPACE.sub(" ", _BIDI.sub("", text)).strip()
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _MENTION.sub("@" + _ZWJ, text)
    text = _ISSUE_REF.sub("#" + _ZWJ, text)
    text = _KEYWORD.sub(lambda m: m.group(1) + _ZWJ, text)
    return _NA_TEXT.sub(lambda m: m.group(1) + _ZWJ, text)


def marker_id(placement_id: str) -> str:
    """The handle Cairn keeps for an item: the id inside its hidden marker."""
    return MARKER_PREFIX + quote(placement_id, safe="_.:@~-")


@dataclass(frozen=True, slots=True)
class Item:
    """An item as found in a body: its box, the engineer's text after the marker and below."""

    placement_id: str
    ticked: bool
    tail: str
    notes: tuple[str, ...]

    @property
    def mark(self) -> ItemObservation:
        """What the engineer did with the item."""
        for line in (self.tail, *self.notes):
            found = _NOT_APPLICABLE.search(line)
            if found is not None:
                reason = _SPACE.sub(" ", found.group("reason")).strip()[:REASON_MAX].strip()
                return ItemObservation(
                    placement_id=self.placement_id, mark=ItemMark.DISMISSED, reason=reason or None
                )
        mark = ItemMark.TICKED if self.ticked else ItemMark.OPEN
        return ItemObservation(placement_id=self.placement_id, mark=mark)


def _bounds(body: str) -> tuple[int, int] | None:
    start = body.find(START)
    if start < 0:
        return None
    end = body.find(END, start + len(START))
    return None if end < 0 else (start, end + len(END))


def items(body: str | None) -> list[Item]:
    """The items of the Cairn section in `body`, in order (none when there is no section)."""
    bounds = _bounds(body or "")
    if body is None or bounds is None:
        return []
    inner = body[bounds[0] + len(START) : bounds[1] - len(END)]
    found: list[Item] = []
    current: dict[str, object] | None = None
    for line in inner.replace("\r\n", "\n").split("\n"):
        match = _ITEM.match(line)
        if match is not None and not _usable(unquote(match.group("id"))):
            match, current = None, None  # a damaged or forged marker: not an item of ours
        if match is not None:
            current = {
                "placement_id": unquote(match.group("id")),
                "ticked": match.group("box") != " ",
                "tail": match.group("tail"),
                "notes": [],
                "detail_seen": False,
            }
            found.append(_freeze(current))
            continue
        if current is None:
            continue  # heading and help text
        if not current["detail_seen"] and _DETAIL.match(line):
            current["detail_seen"] = True
        elif line.strip():
            notes = current["notes"]
            assert isinstance(notes, list)
            notes.append(line)
        found[-1] = _freeze(current)
    unique: dict[str, Item] = {}
    for item in found:
        unique.setdefault(item.placement_id, item)  # a copied item cannot count twice
    return list(unique.values())


def _usable(placement_id: str) -> bool:
    stripped = placement_id.strip()
    return stripped == placement_id and 0 < len(stripped) <= 200 and not _CONTROL.search(stripped)


def _freeze(state: dict[str, object]) -> Item:
    notes = state["notes"]
    assert isinstance(notes, list)
    return Item(
        placement_id=str(state["placement_id"]),
        ticked=bool(state["ticked"]),
        tail=str(state["tail"]),
        notes=tuple(str(n) for n in notes),
    )


def observe(body: str | None) -> tuple[ItemObservation, ...]:
    """The mark on every item of the section."""
    return tuple(item.mark for item in items(body))


def _detail(entry: EmbedEntry) -> str:
    parts = [f"Why: rule {escape(entry.rule_id)}", f"Mandate: {entry.mandate.value}"]
    if entry.due_at is not None:
        parts.append(f"Due: {entry.due_at.date().isoformat()}")
    if entry.lesson_url:
        parts.append(f"[Lesson]({quote(entry.lesson_url, safe=':/?&=#%+@,;~')})")
    return "  <sub>" + " · ".join(parts) + "</sub>"


def _block(entry: EmbedEntry, old: Item | None) -> list[str]:
    # Templates usually start with the title ("{{ lesson.title }}: …"): show it once, in bold.
    text = entry.text.removeprefix(entry.title).lstrip(": ") if entry.title else entry.text
    title, text = escape(entry.title), escape(text)
    shown = f"**{title}**" if not text or text == title else f"**{title}**: {text}"
    box = "x" if old is not None and old.ticked else " "
    tail = "" if old is None else old.tail
    marker = f"<!-- {marker_id(entry.placement_id)} -->"
    return [f"- [{box}] {shown} {marker}{tail}", _detail(entry), *(old.notes if old else ())]


def render(entries: Sequence[EmbedEntry], previous: str | None = None) -> str | None:
    """The section showing `entries` (withdrawn ones left out), marks kept from `previous`."""
    shown = [e for e in entries if not e.withdrawn]
    if not shown:
        return None
    old = {item.placement_id: item for item in items(previous)}
    lines = [START, HEADING, HELP, ""]
    seen: set[str] = set()
    for entry in shown:
        if entry.placement_id in seen:
            continue
        seen.add(entry.placement_id)
        lines.extend(_block(entry, old.get(entry.placement_id)))
    lines.append(END)
    return "\n".join(lines)


def apply(body: str | None, entries: Sequence[EmbedEntry]) -> str:
    """`body` with its Cairn section made to show `entries`; the author's text is untouched."""
    body = body or ""
    bounds = _bounds(body)
    current = None if bounds is None else body[bounds[0] : bounds[1]]
    section = render(entries, current)
    if bounds is None:
        if section is None:
            return body
        return f"{body}{_GAP}{section}" if body else section
    before, after = body[: bounds[0]], body[bounds[1] :]
    if section is not None:
        return before + section + after
    if not after and before.endswith(_GAP):
        return before[: -len(_GAP)]  # the gap Cairn added in front of its section
    return before + after


def extract(body: str | None) -> str | None:
    """The Cairn section of `body` as written, markers included (None when there is none)."""
    bounds = _bounds(body or "")
    return None if body is None or bounds is None else body[bounds[0] : bounds[1]]
