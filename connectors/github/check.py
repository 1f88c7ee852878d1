"""The `Cairn lessons` check run's verdict and text, from the section's marks. Pure: no I/O.

An item counts as done when it is ticked, marked `N/A: reason` with a reason, or waived; every
other mandated item is open and weighs as its rule's gate says (see `core.gate`).
"""

from collections.abc import Sequence
from urllib.parse import quote

from connectors.github import section
from connectors.target import EmbedEntry
from core.feedback import MANDATED, ItemMark
from core.gate import Conclusion, Gate, OpenItem, Verdict, verdict

SUMMARY_MAX = 60_000
"""GitHub refuses a check-run summary over 65,535 characters."""

_TITLES = {
    Conclusion.SUCCESS: "Every required lesson is handled",
    Conclusion.NEUTRAL: "{n} required lesson(s) to tick or justify (not blocking)",
    Conclusion.FAILURE: "{n} required lesson(s) to tick or justify before merging",
}


def judge(entries: Sequence[EmbedEntry], body: str | None) -> Verdict:
    """The verdict for a pull request whose body is `body` and which carries `entries`."""
    marks = {o.placement_id: o for o in section.observe(body)}
    open_items = []
    for entry in entries:
        if entry.withdrawn or entry.mandate not in MANDATED or entry.waived:
            continue
        mark = marks.get(entry.placement_id)
        if mark is not None and mark.mark == ItemMark.TICKED:
            continue
        if mark is not None and mark.mark == ItemMark.DISMISSED and mark.reason:
            continue
        open_items.append(OpenItem(entry.title, entry.gate, entry.lesson_url))
    return verdict(open_items)


def render(found: Verdict) -> tuple[str, str]:
    """The check run's title and summary (Markdown): each open item with its lesson's link."""
    blocking = len(found.blocking)
    title = _TITLES[found.conclusion].format(
        n=blocking if found.conclusion == Conclusion.FAILURE else len(found.open_items)
    )
    if not found.open_items:
        return title, "Nothing pending: every required item is ticked, justified or waived."
    lines = [
        "Tick each item in the pull request's *Lessons* section, or write `N/A: reason` after it.",
        "",
    ]
    for item in found.open_items:
        shown = section.escape(item.title)
        if item.lesson_url:
            shown = f"[{shown}]({quote(item.lesson_url, safe=':/?&=#%+@,;~')})"
        weight = "blocks the merge" if item.gate == Gate.BLOCK else "warning"
        lines.append(f"- {shown} ({weight})")
    summary = "\n".join(lines)
    if len(summary) > SUMMARY_MAX:
        summary = summary[: summary.rfind("\n", 0, SUMMARY_MAX)] + "\n- … and more"
    return title, summary
