"""The marker-fenced "Lessons" section of a pull-request body: render it, and read marks back.

Layout (GitHub hides the HTML comments)::

    <!-- cairn:lessons:start -->
    ### Lessons from past incidents
    _Tick an item once it is handled. If one does not apply, write `N/A: reason` after it._

    - [ ] **Title**: text <!-- cairn:item:pl_1 -->
      <sub>Why: rule r · Mandate: required · Due: 2026-12-01 · [Lesson](https://…)</sub>
    - [ ] **25 more required lessons**: grouped to keep … <!-- cairn:group:pl_2 pl_3 … -->
      <sub>Mandate: required · Due: 2026-12-01 · [The 25 lessons](https://…/ui/work/…)</sub>
    <!-- cairn:lessons:end -->

Everything on an item's lines after its marker, and every further line up to the next item, is
the engineer's: it is kept as written when the section is rendered again, and an `N/A: reason`
there dismisses the item. Lesson text is escaped so it can never mention people, close issues,
forge markers or carry HTML.

Required lessons placed past the fatigue budget (`EmbedEntry.grouped`) share one grouped item
after the others, whose marker lists their placement ids and whose link opens the work item's
list of lessons. Read back, it stands for each of them (see `connectors.grouping`): ticked → each
ticked, `N/A: reason` → each dismissed with the reason, unticked → each open, so `observe`
reports one mark per lesson. A grouped item shows no lesson text at all. Pure: no I/O.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote, unquote

from connectors import grouping
from connectors.target import EmbedEntry
from core.feedback import ItemMark, ItemObservation

START = "<!-- cairn:lessons:start -->"
END = "<!-- cairn:lessons:end -->"
HEADING = "### Lessons from past incidents"
HELP = "_Tick an item once it is handled. If one does not apply, write `N/A: reason` after it._"
MARKER_PREFIX = "cairn:item:"
GROUP_PREFIX = "cairn:group:"
REASON_MAX = 500
_GAP = "\n\n"

_ZWJ = "\u200d"
_ITEM = re.compile(
    r"^[-*+] \[(?P<box>[ xX])\] (?P<shown>.*?)<!-- cairn:item:(?P<id>[A-Za-z0-9%_.:@~-]+) -->"
    r"(?P<tail>.*)$"
)
_GROUP = re.compile(
    r"^[-*+] \[(?P<box>[ xX])\] (?P<shown>.*?)"
    r"<!-- cairn:group:(?P<ids>[A-Za-z0-9%_.:@~-]+(?: [A-Za-z0-9%_.:@~-]+)*) -->(?P<tail>.*)$"
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


_SAFE = "_.:@~-"


def marker_id(placement_id: str) -> str:
    """The handle Cairn keeps for an item: the id inside its hidden marker."""
    return MARKER_PREFIX + quote(placement_id, safe=_SAFE)


def handle(entry: EmbedEntry) -> str:
    """The handle of an entry's placement: its own marker, or (grouped) the grouped item's."""
    if entry.grouped:
        return GROUP_PREFIX + quote(entry.placement_id, safe=_SAFE)
    return marker_id(entry.placement_id)


@dataclass(frozen=True, slots=True)
class Item:
    """An item as found in a body: its box, the engineer's text after the marker and below."""

    placement_id: str
    """The item's placement (a grouped item's first)."""
    ticked: bool
    tail: str
    notes: tuple[str, ...]
    members: tuple[str, ...] = ()
    """A grouped item's placements, as its marker lists them; empty for an item of its own."""
    shown: str = ""
    """Cairn's text before the marker (a revision's "updated"/"reopened" mark included)."""

    @property
    def placement_ids(self) -> tuple[str, ...]:
        """Every placement the item stands for."""
        return self.members or (self.placement_id,)

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

    @property
    def marks(self) -> tuple[ItemObservation, ...]:
        """The mark once per placement: a grouped item's mark is each of its lessons' mark."""
        mark = self.mark
        return tuple(
            ItemObservation(placement_id=p, mark=mark.mark, reason=mark.reason)
            for p in self.placement_ids
        )


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
        match = _ITEM.match(line) or _GROUP.match(line)
        ids = [] if match is None else _ids(match)
        if match is not None and not ids:
            match, current = None, None  # a damaged or forged marker: not an item of ours
        if match is not None:
            current = {
                "placement_id": ids[0],
                "members": ids if "ids" in match.groupdict() else [],
                "ticked": match.group("box") != " ",
                "tail": match.group("tail"),
                "shown": match.group("shown"),
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
    unique: list[Item] = []
    seen: set[str] = set()
    for item in found:
        # A copied item, or a placement listed twice, cannot count twice: the first one counts.
        fresh = [p for p in dict.fromkeys(item.placement_ids) if p not in seen]
        if not fresh:
            continue
        seen.update(fresh)
        if item.members:
            item = replace(item, placement_id=fresh[0], members=tuple(fresh))
        unique.append(item)
    return unique


def _ids(match: re.Match[str]) -> list[str]:
    """The usable placement ids of an item's marker (none: damaged or forged)."""
    found = match.groupdict().get("ids")
    raw = match.group("id") if found is None else found
    ids = [unquote(part) for part in raw.split(" ")]
    if found is None:
        return ids if _usable(ids[0]) else []
    return [p for p in ids if _usable(p)]


def _usable(placement_id: str) -> bool:
    stripped = placement_id.strip()
    return stripped == placement_id and 0 < len(stripped) <= 200 and not _CONTROL.search(stripped)


def _freeze(state: dict[str, object]) -> Item:
    notes, members = state["notes"], state["members"]
    assert isinstance(notes, list) and isinstance(members, list)
    return Item(
        placement_id=str(state["placement_id"]),
        ticked=bool(state["ticked"]),
        tail=str(state["tail"]),
        notes=tuple(str(n) for n in notes),
        members=tuple(str(m) for m in members),
        shown=str(state.get("shown", "")),
    )


def observe(body: str | None) -> tuple[ItemObservation, ...]:
    """The mark on every placed lesson of the section (a grouped item's once per lesson)."""
    return tuple(mark for item in items(body) for mark in item.marks)


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
    if entry.reopened is not None:
        mark = f"_(reopened: {escape(entry.reopened)})_"
        if old is not None and mark not in old.shown:
            box = " "  # once: an engineer who ticks it again after the reopening is kept
        shown = f"{shown} {mark}"
    elif entry.revised_from is not None:
        shown = f"{shown} _(updated to v{entry.lesson_version})_"
    tail = "" if old is None else old.tail
    marker = f"<!-- {marker_id(entry.placement_id)} -->"
    return [f"- [{box}] {shown} {marker}{tail}", _detail(entry), *(old.notes if old else ())]


def _group_detail(members: Sequence[EmbedEntry]) -> str:
    parts = [f"Mandate: {grouping.mandate(members).value}"]
    due = grouping.due(members)
    if due is not None:
        parts.append(f"Due: {due.date().isoformat()}")
    url = grouping.list_url(members)
    if url:
        what = "The lesson" if len(members) == 1 else f"The {len(members)} lessons"
        parts.append(f"[{what}]({quote(url, safe=':/?&=#%+@,;~')})")
    return "  <sub>" + " · ".join(parts) + "</sub>"


def _group_block(members: Sequence[EmbedEntry], old: Item | None) -> list[str]:
    shown = (
        f"**{grouping.label(members)}**: grouped to keep this list short; "
        "tick this once every one of them is handled"
    )
    box = "x" if old is not None and old.ticked else " "
    tail = "" if old is None else old.tail
    ids = " ".join(quote(e.placement_id, safe=_SAFE) for e in members)
    marker = f"<!-- {GROUP_PREFIX}{ids} -->"
    return [
        f"- [{box}] {shown} {marker}{tail}",
        _group_detail(members),
        *(old.notes if old else ()),
    ]


def render(entries: Sequence[EmbedEntry], previous: str | None = None) -> str | None:
    """The section showing `entries` (withdrawn ones left out), marks kept from `previous`;
    the grouped ones in grouped items after the others."""
    shown = [e for e in entries if not e.withdrawn]
    if not shown:
        return None
    found = items(previous)
    old = {item.placement_id: item for item in found if not item.members}
    lines = [START, HEADING, HELP, ""]
    seen: set[str] = set()
    grouped: dict[str, EmbedEntry] = {}
    for entry in shown:
        if entry.grouped:
            grouped.setdefault(entry.placement_id, entry)
            continue
        if entry.placement_id in seen:
            continue
        seen.add(entry.placement_id)
        lines.extend(_block(entry, old.get(entry.placement_id)))
    before = [
        (item, item.members, item.mark.mark != ItemMark.OPEN) for item in found if item.members
    ]
    for item, members in grouping.partition(list(grouped), before):
        lines.extend(_group_block([grouped[p] for p in members], item))
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
