"""The heading convention, front matter, blameless findings and weak-capture warnings (pure)."""

from datetime import UTC, datetime

import pytest

from core.blameless import Known, redact, scan, warnings
from core.errors import ConfigurationError
from core.work_capture import SourceDocument, draft_from, load_headings, sections

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _source(body: str) -> SourceDocument:
    return SourceDocument.model_validate(
        {
            "system": "github",
            "kind": "issue",
            "ref": "github:acme/api#9",
            "version": "2026-11-30T10:00:00Z",
            "title": "Near miss",
            "url": "https://github.com/acme/api/issues/9",
            "project": "acme/api",
            "body": body,
        },
        strict=False,
    )


def test_markdown_and_jira_headings_fill_fields_and_unknown_sections_are_left_out() -> None:
    body = (
        "h2. What happened:\nIt broke.\n\n## Timeline\n* 10:00\n\n"
        "### Contributing factors\n1. A\n2. B"
    )
    assert sections(body) == {"what_happened": "It broke.", "contributing_conditions": "1. A\n2. B"}
    lesson, problem = draft_from(_source(body), NOW)
    assert problem is None
    assert lesson.context.contributing_conditions == ("A", "B")
    assert lesson.statement == "To be written from github:acme/api#9."


def test_a_heading_mapping_file_replaces_the_convention_and_is_checked() -> None:
    mapping = load_headings("headings:\n  statement: [Was wir lernen]\n")
    assert sections("# Was wir lernen\nImmer X.", mapping) == {"statement": "Immer X."}
    with pytest.raises(ConfigurationError, match="not one of"):
        load_headings("headings:\n  owner: [Team]\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_headings("headings:\n  statement: [a]\n  statement: [b]\n")  # a repeated key


@pytest.mark.parametrize(
    ("front", "problem"),
    [
        ("owner: [a, b]\n", "front matter does not fit the lesson: owner"),
        ("reviewer: me\n", "front matter has unknown keys ['reviewer']"),
        ("title: a\ntitle: b\n", "front matter is not valid YAML"),
    ],
)
def test_unusable_front_matter_is_reported_and_the_sections_are_used(
    front: str, problem: str
) -> None:
    lesson, found = draft_from(_source(f"---\n{front}---\n## Lesson\nCheck the pool."), NOW)
    assert found is not None and found.startswith(problem)
    assert lesson.statement == "Check the pool."


def test_names_logins_mentions_and_blame_are_found_and_redacted_everywhere() -> None:
    body = (
        "## What happened\nAlex Kim and @sam deployed.\n\n"
        "## Lesson\nAlex forgot to check alex-k's graph."
    )
    lesson, _ = draft_from(_source(body), NOW)
    known = Known(names=("Alex Kim",), logins=("alex-k",))
    found = {(f.kind.value, f.term) for f in scan(lesson, known)}
    assert found == {
        ("person", "Alex Kim"),
        ("person", "Alex"),
        ("person", "alex-k"),
        ("mention", "@sam"),
        ("blame", "forgot to"),
    }
    person = next(f for f in scan(lesson, known) if f.term == "Alex Kim")
    redacted, originals = redact(lesson, person, known)
    assert "Alex Kim" not in redacted.context.what_happened
    assert originals == {"context.what_happened": lesson.context.what_happened}


def test_weak_capture_warnings() -> None:
    lesson, _ = draft_from(_source("## Lesson\nCommunicate better."), NOW)
    codes = [
        w.code
        for w in warnings(
            lesson.model_copy(
                update={"provenance": lesson.provenance.model_copy(update={"evidence_links": ()})}
            )
        )
    ]
    assert codes == ["statement_short", "slogan", "no_conditions", "no_evidence"]
    strong = (
        "## Lesson\n"
        + "Derive the pool size from the worker count on every change. "
        + "\n## Conditions\n- constant pool"
    )
    lesson, _ = draft_from(_source(strong), NOW)
    assert warnings(lesson) == []
    assert [w.code for w in warnings(lesson, min_statement=500, slogans=())] == ["statement_short"]
