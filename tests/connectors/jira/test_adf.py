"""The lessons task list in ADF: placed, re-placed idempotently, read back; the rest untouched."""

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.jira import adf
from core.feedback import ItemMark
from core.lesson import Mandate
from tests.connectors.hostile_text import BIDI, HOSTILE

ONE = adf.Item("pl_one", "Derive the pool size", "Recompute the pool.", Mandate.REQUIRED, "org/r1")
TWO = adf.Item(
    "pl_two",
    "Fingerprint assets",
    "Hash names.",
    Mandate.INVITED,
    "org/r2",
    due_at=datetime(2026, 12, 6, tzinfo=UTC),
    url="https://cairn.example.com/ui/lessons/cache-bust-css",
)


def para(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


HUMAN = {
    "type": "doc",
    "version": 1,
    "content": [
        para("Double the workers per pod."),
        {
            "type": "table",
            "attrs": {"layout": "default"},
            "content": [
                {"type": "tableRow", "content": [{"type": "tableCell", "content": [para("x")]}]}
            ],
        },
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [para("note")]},
        {"type": "bulletList", "content": [{"type": "listItem", "content": [para("keep p99")]}]},
        {
            "type": "mediaSingle",
            "content": [{"type": "media", "attrs": {"id": "abc", "type": "file"}}],
        },
        {
            "type": "extension",
            "attrs": {"extensionKey": "x", "parameters": {"a": [1, {"b": None}]}},
        },
    ],
}


def human_nodes(doc: dict[str, Any]) -> list[Any]:
    return [
        n
        for n in doc["content"]
        if not (n.get("type") == "taskList" and n["attrs"]["localId"] == adf.LIST_ID)
        and not (n.get("type") == "heading" and adf.plain_text(n) == adf.HEADING)
    ]


@pytest.mark.parametrize(
    "before",
    [
        None,
        {},
        adf.empty_doc(),
        HUMAN,
        {"type": "paragraph"},
        "text",
        {"type": "doc", "content": "x"},
    ],
)
def test_apply_places_the_list_under_the_heading_and_keeps_the_rest(before: Any) -> None:
    original = copy.deepcopy(before)
    after = adf.apply(before, [ONE, TWO])
    assert before == original  # never mutated
    heading, task_list = after["content"][-2:]
    assert adf.plain_text(heading) == "Lessons learned"
    ids = [i["attrs"]["localId"] for i in task_list["content"]]
    assert ids == [adf.local_id("pl_one"), adf.local_id("pl_two")]
    if before is HUMAN:
        assert human_nodes(after) == HUMAN["content"]
    assert adf.apply(after, [ONE, TWO]) == after  # idempotent: nothing to write the second time


def test_render_shows_mandate_why_due_and_link_as_plain_text() -> None:
    nodes = adf.render(TWO)
    text = "".join(n["text"] for n in nodes)
    assert "Fingerprint assets: Hash names." in text
    assert "Suggested" in text and "why: rule org/r2" in text and "due 2026-12-06" in text
    assert nodes[-1]["marks"] == [{"type": "link", "attrs": {"href": TWO.url}}]


@pytest.mark.parametrize(
    ("title", "text", "expect_absent"),
    [
        ("a\x00b\x1bc", "line\nbreak\ttab", "\x00"),
        ("N/A: sneaky", "N/A:   also", "N/A:"),
        ('{"type": "mention"}', "<script>alert(1)</script>", "\n"),
        ("\u2028", "\x7f\x9f", "\u2028"),
    ],
)
def test_hostile_lesson_text_stays_text(title: str, text: str, expect_absent: str) -> None:
    item = adf.Item("pl_x", title, text, Mandate.REVIEW_AND_JUSTIFY, "r\nule", url="javascript:x")
    nodes = adf.render(item)
    assert all(n["type"] == "text" for n in nodes)
    assert len(nodes) == 1  # no link for a non-http URL
    assert expect_absent not in nodes[0]["text"]
    assert adf.read_mark(adf.task_item(item)).mark == ItemMark.OPEN  # our text never dismisses


def test_marks_are_read_back() -> None:
    doc = adf.apply(HUMAN, [ONE, TWO])
    items = doc["content"][-1]["content"]
    items[0]["attrs"]["state"] = "DONE"
    items[1]["content"].append({"type": "text", "text": " N/A: we use PgBouncer"})
    marks = adf.marks(doc, ["pl_one", "pl_two", "pl_missing"])
    assert marks == {
        "pl_one": adf.Mark(ItemMark.TICKED),
        "pl_two": adf.Mark(ItemMark.DISMISSED, "we use PgBouncer"),
    }
    assert adf.apply(doc, [ONE, TWO]) == doc  # the engineer's marks and words are kept


def test_withdrawn_and_forged_items_go_and_engineer_items_stay() -> None:
    doc = adf.apply(HUMAN, [ONE, TWO])
    task_list = doc["content"][-1]
    mine = {
        "type": "taskItem",
        "attrs": {"localId": "u-1", "state": "TODO"},
        "content": [{"type": "text", "text": "my own"}],
    }
    forged = {
        "type": "taskItem",
        "attrs": {"localId": "cairn-forged", "state": "DONE"},
        "content": [],
    }
    task_list["content"] += [mine, forged]
    after = adf.apply(doc, [TWO])
    ids = [i["attrs"]["localId"] for i in after["content"][-1]["content"]]
    assert ids == [adf.local_id("pl_two"), "u-1"]
    only_mine = adf.apply(after, [])
    assert only_mine["content"][-1]["content"] == [mine]  # heading and list stay for the engineer
    assert adf.apply(adf.apply(HUMAN, [ONE]), []) == HUMAN  # nothing left: heading and list go


def test_a_copy_of_the_list_elsewhere_cannot_forge_a_tick() -> None:
    doc = adf.apply(HUMAN, [ONE])
    copied = copy.deepcopy(doc["content"][-1])
    copied["content"][0]["attrs"]["state"] = "DONE"
    doc["content"].insert(0, copied)
    assert adf.marks(doc, ["pl_one"])["pl_one"].mark == ItemMark.OPEN


def test_an_existing_heading_gets_the_list_right_after_it() -> None:
    heading = {
        "type": "heading",
        "attrs": {"level": 2},
        "content": [{"type": "text", "text": " lessons LEARNED "}],
    }
    doc = {"type": "doc", "version": 1, "content": [heading, para("after")]}
    after = adf.apply(doc, [ONE])
    assert [n["type"] for n in after["content"]] == ["heading", "taskList", "paragraph"]
    assert adf.apply(doc, []) == doc  # a heading of the engineer's own is never removed


# --- properties ---------------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8"), max_size=40)
_leaf = st.builds(lambda t: {"type": "text", "text": t or "x"}, _text)
_node = st.recursive(
    st.one_of(_leaf, st.builds(lambda t: para(t or "y"), _text)),
    lambda children: st.builds(
        lambda kind, kids, extra: {"type": kind, "content": kids, "attrs": extra},
        st.sampled_from(["paragraph", "panel", "bulletList", "taskList", "heading", "blockquote"]),
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["localId", "state", "level"]), _text, max_size=2),
    ),
    max_leaves=12,
)
_docs = st.builds(
    lambda nodes: {"type": "doc", "version": 1, "content": nodes}, st.lists(_node, max_size=5)
)
_items = st.lists(
    st.builds(
        adf.Item,
        placement_id=st.text(min_size=1, max_size=10),
        title=_text,
        text=_text,
        mandate=st.sampled_from(list(Mandate)),
        rule_id=_text,
    ),
    max_size=4,
    unique_by=lambda i: i.placement_id,
)


@settings(max_examples=150, deadline=None)
@given(_docs, _items, _items)
def test_round_trips(doc: dict[str, Any], first: list[adf.Item], second: list[adf.Item]) -> None:
    placed = adf.apply(doc, first)
    json.dumps(placed)  # still JSON
    assert adf.apply(placed, first) == placed
    marks = adf.marks(placed, [i.placement_id for i in first])
    assert set(marks) == {i.placement_id for i in first}
    assert all(m.mark == ItemMark.OPEN for m in marks.values())
    moved = adf.apply(placed, second)
    assert set(adf.marks(moved, [i.placement_id for i in first + second])) == {
        i.placement_id for i in second
    }
    if not first and not second:
        assert moved == doc


def test_text_written_between_heading_and_list_stays_and_the_list_is_still_found() -> None:
    doc = adf.apply(HUMAN, [ONE])
    doc["content"].insert(-1, para("between"))
    doc["content"][-1]["content"][0]["attrs"]["state"] = "DONE"
    assert adf.marks(doc, ["pl_one"])["pl_one"].mark == ItemMark.TICKED
    grown = adf.apply(doc, [ONE, TWO])
    assert [adf.plain_text(n) for n in grown["content"][-3:-1]] == ["Lessons learned", "between"]
    assert len(grown["content"][-1]["content"]) == 2
    emptied = adf.apply(doc, [])
    assert emptied["content"] == [*HUMAN["content"], para("between")]


# Fragments a lesson's author (or a template) could use to make an item read as dismissed.


@settings(max_examples=300, deadline=None)
@given(title=HOSTILE, text=HOSTILE)
def test_no_lesson_text_reads_back_as_anything_but_open(title: str, text: str) -> None:
    item = adf.Item("pl_x", title or "t", text, Mandate.REQUIRED, "org/rule")
    node = adf.task_item(item)
    assert adf.read_mark(node).mark == ItemMark.OPEN, adf.plain_text(node)
    assert not any(ch in adf.plain_text(node) for ch in BIDI)


def test_a_title_ending_in_na_does_not_dismiss_its_own_item() -> None:
    node = adf.task_item(
        adf.Item("pl_x", "Retry budgets N/A", "give every client one", Mandate.REQUIRED, "r")
    )
    assert adf.read_mark(node).mark == ItemMark.OPEN


# Required lessons past the fatigue budget, in one grouped task item.

LIST = "https://cairn.example.com/ui/work/jira%3APAY-7"


def grouped(pid: str, **changes: Any) -> adf.Item:
    fields: dict[str, Any] = {
        "title": f"Lesson {pid}",
        "text": "Do the thing.",
        "mandate": Mandate.REQUIRED,
        "rule_id": "org/required",
        "due_at": datetime(2026, 12, 6, tzinfo=UTC),
        "grouped": True,
        "list_url": LIST,
        **changes,
    }
    return adf.Item(pid, **fields)


def our_list(doc: dict[str, Any]) -> list[dict[str, Any]]:
    [found] = [n for n in doc["content"] if n.get("type") == "taskList"]
    return list(found["content"])


def property_of(ids: dict[str, str]) -> dict[str, Any]:
    """The `cairn.lessons` items the Jira target records for `ids` (placement → localId)."""
    return {pid: {"localId": local} for pid, local in ids.items()}


def test_grouped_items_share_one_task_item_that_links_to_their_list() -> None:
    items = [ONE, grouped("pl_g1"), grouped("pl_g2"), grouped("pl_g3")]
    doc, ids = adf.arrange(HUMAN, items, {})
    nodes = our_list(doc)
    assert len(nodes) == 2
    group = nodes[1]
    assert group["attrs"] == {"localId": adf.group_id("pl_g1"), "state": "TODO"}
    assert ids == {
        "pl_one": adf.local_id("pl_one"),
        **dict.fromkeys(["pl_g1", "pl_g2", "pl_g3"], adf.group_id("pl_g1")),
    }
    text = adf.plain_text(group)
    assert text.startswith("3 more required lessons: grouped to keep this list short")
    assert "Required — due 2026-12-06 — the list" in text
    assert "Lesson pl_g1" not in text
    assert group["content"][-1]["marks"] == [{"type": "link", "attrs": {"href": LIST}}]
    where = adf.located(property_of(ids))
    assert adf.arrange(doc, items, where) == (doc, ids)  # a repeat changes nothing
    assert {p: m.mark for p, m in adf.marks(doc, ids, where).items()} == dict.fromkeys(
        ids, ItemMark.OPEN
    )


def test_a_mark_on_the_grouped_item_is_each_lessons_mark() -> None:
    items = [ONE, grouped("pl_g1"), grouped("pl_g2")]
    doc, ids = adf.arrange(HUMAN, items, {})
    where = adf.located(property_of(ids))
    group = our_list(doc)[1]
    group["attrs"]["state"] = "DONE"
    found = adf.marks(doc, ids, where)
    assert (found["pl_one"].mark, found["pl_g1"].mark, found["pl_g2"].mark) == (
        ItemMark.OPEN,
        ItemMark.TICKED,
        ItemMark.TICKED,
    )
    group["attrs"]["state"] = "TODO"
    group["content"].append({"type": "text", "text": " N/A: the platform does it"})
    found = adf.marks(doc, ids, where)
    assert found["pl_g1"] == found["pl_g2"] == adf.Mark(ItemMark.DISMISSED, "the platform does it")
    assert adf.arrange(doc, items, where) == (doc, ids)  # the engineer's words are kept
    assert adf.marks(doc, ids) == {"pl_one": adf.Mark(ItemMark.OPEN)}  # unrecorded: not read


def test_an_open_group_takes_newcomers_and_counts_them_a_marked_one_does_not() -> None:
    doc, ids = adf.arrange(HUMAN, [grouped("pl_g1"), grouped("pl_g2")], {})
    group = our_list(doc)[0]
    group["content"].append({"type": "text", "text": " (Erin is on it)"})
    more = [grouped("pl_g1"), grouped("pl_g2"), grouped("pl_g3")]
    grown, grown_ids = adf.arrange(doc, more, adf.located(property_of(ids)))
    [node] = our_list(grown)
    assert set(grown_ids.values()) == {adf.group_id("pl_g1")}
    assert adf.plain_text(node).startswith("3 more required lessons")
    assert adf.plain_text(node).endswith("the list (Erin is on it)")  # the engineer's words kept
    node["attrs"]["state"] = "DONE"
    later, later_ids = adf.arrange(
        grown, [*more, grouped("pl_g4")], adf.located(property_of(grown_ids))
    )
    first, second = our_list(later)
    assert first == node  # ticked: neither joined nor rewritten
    assert second["attrs"] == {"localId": adf.group_id("pl_g4"), "state": "TODO"}
    assert adf.plain_text(second).startswith("1 more required lesson:")
    assert later_ids["pl_g4"] == adf.group_id("pl_g4")
    where = adf.located(property_of(later_ids))
    assert {p: m.mark for p, m in adf.marks(later, later_ids, where).items()} == {
        "pl_g1": ItemMark.TICKED,
        "pl_g2": ItemMark.TICKED,
        "pl_g3": ItemMark.TICKED,
        "pl_g4": ItemMark.OPEN,
    }
    emptied, none = adf.arrange(later, [], where)
    assert none == {} and emptied["content"] == HUMAN["content"]


@settings(max_examples=300, deadline=None)
@given(title=HOSTILE, text=HOSTILE, rule=HOSTILE)
def test_no_grouped_lesson_reads_back_as_anything_but_open(
    title: str, text: str, rule: str
) -> None:
    items = [grouped(f"pl_{n}", title=title or "t", text=text, rule_id=rule) for n in range(3)]
    doc, ids = adf.arrange(None, items, {})
    found = adf.marks(doc, ids, adf.located(property_of(ids)))
    assert {p: m.mark for p, m in found.items()} == dict.fromkeys(ids, ItemMark.OPEN)
    assert not any(ch in json.dumps(doc, ensure_ascii=False) for ch in BIDI)
