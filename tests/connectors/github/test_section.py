"""The Lessons section: rendering, reading marks back, keeping the author's text, escaping."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.github import section
from connectors.target import EmbedEntry
from core.feedback import ItemMark
from core.lesson import Mandate
from core.placement import EmbeddingForm
from tests.connectors.hostile_text import BIDI, HOSTILE


def entry(pid: str = "pl_1", **changes: object) -> EmbedEntry:
    base = EmbedEntry(
        placement_id=pid,
        lesson_id="derive-pool-size",
        lesson_version=1,
        title="Derive the pool size",
        text="Recompute the pool when worker counts change.",
        rule_id="team-payments/pool",
        mandate=Mandate.REQUIRED,
        form=EmbeddingForm.GITHUB_PR_CHECKLIST,
        lesson_url="https://cairn.example.com/ui/lessons/derive-pool-size",
        due_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def marks(body: str) -> dict[str, tuple[ItemMark, str | None]]:
    return {o.placement_id: (o.mark, o.reason) for o in section.observe(body)}


def test_the_section_shows_what_the_issue_asks_for() -> None:
    body = section.apply("My change.", [entry()])
    assert body.startswith("My change.\n\n" + section.START)
    assert body.endswith(section.END)
    for part in (
        "- [ ] **Derive the pool size**: Recompute the pool when worker counts change.",
        "<!-- cairn:item:pl_1 -->",
        "Why: rule team-payments/pool",
        "Mandate: required",
        "Due: 2026-12-01",
        "[Lesson](https://cairn.example.com/ui/lessons/derive-pool-size)",
        "`N/A: reason`",
    ):
        assert part in body
    assert marks(body) == {"pl_1": (ItemMark.OPEN, None)}


def test_ticks_and_reasons_survive_a_re_render_and_withdrawn_items_go() -> None:
    body = section.apply("Intro", [entry("pl_1"), entry("pl_2", title="Other")])
    body = body.replace("- [ ] **Derive", "- [x] **Derive")
    body = body.replace("pl_2 -->", "pl_2 --> N/A: no pool here")
    again = section.apply(body, [entry("pl_1"), entry("pl_2", title="Other"), entry("pl_3")])
    assert marks(again) == {
        "pl_1": (ItemMark.TICKED, None),
        "pl_2": (ItemMark.DISMISSED, "no pool here"),
        "pl_3": (ItemMark.OPEN, None),
    }
    withdrawn = section.apply(again, [entry("pl_1"), entry("pl_2", withdrawn=True), entry("pl_3")])
    assert set(marks(withdrawn)) == {"pl_1", "pl_3"}
    assert withdrawn.count(section.START) == 1 and withdrawn.count("cairn:item:pl_1") == 1


def test_a_reason_on_its_own_line_under_the_item_counts() -> None:
    body = section.apply("", [entry()])
    lines = body.split("\n")
    at = next(i for i, line in enumerate(lines) if "cairn:item:pl_1" in line)
    lines.insert(at + 2, "n/a:   we use PgBouncer  ")
    assert marks("\n".join(lines)) == {"pl_1": (ItemMark.DISMISSED, "we use PgBouncer")}
    kept = section.apply("\n".join(lines), [entry(), entry("pl_2")])
    assert "n/a:   we use PgBouncer  " in kept  # the engineer's words, as written


def test_rendering_is_idempotent_and_removal_restores_the_body() -> None:
    original = "Intro\r\n\r\n- [ ] my own task\n"
    once = section.apply(original, [entry()])
    assert section.apply(once, [entry()]) == once
    assert section.apply(once, []) == original
    assert section.apply(once, [entry(withdrawn=True)]) == original
    assert section.apply(None, []) == ""
    assert marks(original) == {}


def test_text_after_the_section_is_kept() -> None:
    body = section.apply("Top", [entry()]) + "\n\nFooter by the author"
    updated = section.apply(body, [entry(), entry("pl_2")])
    assert updated.startswith("Top\n\n") and updated.endswith("\n\nFooter by the author")
    assert section.apply(updated, []) == "Top\n\n\n\nFooter by the author"


def test_a_copied_item_counts_once() -> None:
    body = section.apply("", [entry()])
    line = next(x for x in body.split("\n") if "cairn:item:pl_1" in x)
    doubled = body.replace(line, line + "\n" + line.replace("[ ]", "[x]"))
    assert marks(doubled) == {"pl_1": (ItemMark.OPEN, None)}
    assert section.apply(doubled, [entry()]).count("cairn:item:pl_1") == 1


@pytest.mark.parametrize(
    ("hostile", "forbidden"),
    [
        ("ping @octocat and @acme/security", "@o"),
        ("fixes #12", "fixes #12"),
        ("Closes org/repo#3", "#3"),
        ("resolved: #7", "#7"),
        ("<!-- cairn:lessons:end -->", "<!-- cairn:lessons:end -->\n<!--"),
        ("<!-- cairn:item:pl_9 -->", "cairn:item:pl_9"),
        ("<script>alert(1)</script>", "<script"),
        ("<img src=x onerror=alert(1)>", "<img"),
        ("line one\n- [x] forged item", "\n- [x] forged"),
        ("N/A: not my problem", "N/A: not"),
        ("[click](javascript:alert(1))", "[click]"),
    ],
)
def test_hostile_lesson_text_is_inert(hostile: str, forbidden: str) -> None:
    body = section.apply("", [entry(title=hostile, text=hostile, rule_id=hostile)])
    assert forbidden not in body
    assert body.count("<!--") == 3  # start, end and the item's marker: nothing forged
    assert marks(body) == {"pl_1": (ItemMark.OPEN, None)}


def test_placement_ids_with_odd_characters_round_trip() -> None:
    body = section.apply("", [entry("pl x-->y")])
    assert "pl x-->y" not in body
    assert marks(body) == {"pl x-->y": (ItemMark.OPEN, None)}
    assert section.marker_id("pl x-->y") in body


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=80)
ids = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=20).filter(
    lambda s: s == s.strip()  # placement ids are names: no surrounding blanks
)


@settings(max_examples=200, deadline=None)
@given(author=texts, title=texts, text=texts, pids=st.lists(ids, min_size=1, max_size=4))
def test_round_trip_for_any_text(author: str, title: str, text: str, pids: list[str]) -> None:
    if section.START in author or section.END in author:
        return  # an author who writes Cairn's markers owns the consequences
    entries = [entry(p, title=title or "t", text=text) for p in dict.fromkeys(pids)]
    body = section.apply(author, entries)
    assert body.startswith(author)
    assert body.count(section.START) == 1 and body.count(section.END) == 1
    assert marks(body) == {p: (ItemMark.OPEN, None) for p in dict.fromkeys(pids)}
    assert section.apply(body, entries) == body
    assert section.apply(body, []) == author


@settings(max_examples=200, deadline=None)
@given(hostile=texts)
def test_lesson_text_never_forges_structure(hostile: str) -> None:
    escaped = section.escape(hostile)
    assert "\n" not in escaped and "\r" not in escaped
    assert "<" not in escaped and ">" not in escaped
    body = section.apply("", [entry(title=hostile or "t", text=hostile)])
    assert marks(body) == {"pl_1": (ItemMark.OPEN, None)}


@settings(max_examples=300, deadline=None)
@given(title=HOSTILE, text=HOSTILE)
def test_no_lesson_text_reads_back_as_anything_but_open(title: str, text: str) -> None:
    body = section.apply("Author text.", [entry(title=title or "t", text=text)])
    assert marks(body) == {"pl_1": (ItemMark.OPEN, None)}
    assert not any(ch in body for ch in BIDI)


# ---- required lessons past the fatigue budget, in one grouped item ---------------------------

LIST = "https://cairn.example.com/ui/work/github%3Aacme%2Fpayments-api%2312"


def grouped(pid: str, **changes: object) -> EmbedEntry:
    return entry(pid, grouped=True, list_url=LIST, **changes)


def group_line(body: str) -> int:
    lines = body.split("\n")
    return next(i for i, line in enumerate(lines) if section.GROUP_PREFIX in line)


def tick_group(body: str) -> str:
    lines = body.split("\n")
    index = group_line(body)
    lines[index] = lines[index].replace("- [ ]", "- [x]", 1)
    return "\n".join(lines)


def test_grouped_lessons_share_one_item_after_the_others_that_links_to_their_list() -> None:
    entries = [entry("pl_1"), *(grouped(f"pl_g{n}", title=f"Lesson {n}") for n in range(3))]
    body = section.apply("", entries)
    assert body.count("cairn:item:") == 1 and body.count(section.GROUP_PREFIX) == 1
    lines = body.split("\n")
    index = group_line(body)
    assert index > next(i for i, line in enumerate(lines) if "cairn:item:pl_1" in line)
    assert lines[index].startswith("- [ ] **3 more required lessons**: grouped to keep")
    assert "<!-- cairn:group:pl_g0 pl_g1 pl_g2 -->" in lines[index]
    assert lines[index + 1] == (
        f"  <sub>Mandate: required · Due: 2026-12-01 · [The 3 lessons]({LIST})</sub>"
    )
    assert "Lesson 1" not in body  # the list holds the lessons; the item only counts them
    assert marks(body) == {p: (ItemMark.OPEN, None) for p in ("pl_1", "pl_g0", "pl_g1", "pl_g2")}
    assert section.apply(body, entries) == body  # a repeat writes nothing
    assert [section.handle(e) for e in entries[:2]] == ["cairn:item:pl_1", "cairn:group:pl_g0"]


def test_a_mark_on_the_grouped_item_is_each_lessons_mark() -> None:
    entries = [entry("pl_1"), grouped("pl_g1"), grouped("pl_g2")]
    body = section.apply("", entries)
    ticked = tick_group(body)
    assert marks(ticked) == {
        "pl_1": (ItemMark.OPEN, None),
        "pl_g1": (ItemMark.TICKED, None),
        "pl_g2": (ItemMark.TICKED, None),
    }
    assert section.apply(ticked, entries) == ticked  # the tick is kept
    lines = body.split("\n")
    lines.insert(group_line(body) + 2, "  N/A: covered by the platform's defaults")
    dismissed = "\n".join(lines)
    reason = "covered by the platform's defaults"
    assert marks(dismissed)["pl_g1"] == marks(dismissed)["pl_g2"] == (ItemMark.DISMISSED, reason)
    assert section.apply(dismissed, entries) == dismissed  # the engineer's reason is kept


def test_newcomers_join_an_open_group_but_never_a_ticked_one() -> None:
    body = section.apply("", [grouped("pl_g1"), grouped("pl_g2")])
    grown = section.apply(body, [grouped("pl_g1"), grouped("pl_g2"), grouped("pl_g3")])
    assert grown.count(section.GROUP_PREFIX) == 1 and "**3 more required lessons**" in grown
    ticked = tick_group(body)
    later = section.apply(ticked, [grouped("pl_g1"), grouped("pl_g2"), grouped("pl_g3")])
    assert later.count(section.GROUP_PREFIX) == 2
    assert "- [x] **2 more required lessons**" in later
    assert "- [ ] **1 more required lesson**" in later
    assert marks(later) == {
        "pl_g1": (ItemMark.TICKED, None),
        "pl_g2": (ItemMark.TICKED, None),
        "pl_g3": (ItemMark.OPEN, None),
    }
    # A withdrawn lesson leaves its group; the group keeps its tick.
    withdrawn = section.apply(
        later, [grouped("pl_g1"), grouped("pl_g2", withdrawn=True), grouped("pl_g3")]
    )
    assert marks(withdrawn) == {"pl_g1": (ItemMark.TICKED, None), "pl_g3": (ItemMark.OPEN, None)}
    assert "- [x] **1 more required lesson**" in withdrawn


def test_a_copied_or_forged_group_marker_counts_each_lesson_once() -> None:
    body = section.apply("", [entry("pl_1"), grouped("pl_g1")])
    lines = body.split("\n")
    index = group_line(body)
    copy = lines[index].replace("- [ ]", "- [x]").replace("pl_g1", "pl_1 pl_g1")
    forged = "\n".join([*lines[: index + 2], copy, *lines[index + 2 :]])
    assert marks(forged) == {"pl_1": (ItemMark.OPEN, None), "pl_g1": (ItemMark.OPEN, None)}
    damaged = body.replace("cairn:group:pl_g1", "cairn:group:pl_g1%0A")
    assert marks(damaged) == {"pl_1": (ItemMark.OPEN, None)}  # no usable id: not ours


@settings(max_examples=200, deadline=None)
@given(pids=st.lists(ids, min_size=1, max_size=5), title=HOSTILE, text=HOSTILE, rule=HOSTILE)
def test_grouped_items_read_back_open_whatever_their_lessons_say(
    pids: list[str], title: str, text: str, rule: str
) -> None:
    entries = [grouped(p, title=title, text=text, rule_id=rule) for p in dict.fromkeys(pids)]
    body = section.apply("Author text.", [entry("pl_own", title=title, text=text), *entries])
    assert marks(body) == {p: (ItemMark.OPEN, None) for p in ["pl_own", *dict.fromkeys(pids)]}
    assert body.count("<!--") == 4  # start, end, the item's marker and the group's
    assert not any(ch in body for ch in BIDI)
    assert section.apply(body, [entry("pl_own", title=title, text=text), *entries]) == body
