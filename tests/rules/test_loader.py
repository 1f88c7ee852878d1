"""Rule files: strict parsing, errors with exact file:line:column, versions and the JSON Schema."""

import json
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from core.placement import EmbeddingForm
from rules.loader import RuleError, RuleSet, RuleSetError, build_rule_set, parse_pack
from rules.model import Level, Pack, Rule, parse_duration

EXAMPLES = Path(__file__).parents[2] / "rules" / "examples"

VALID = dedent(
    """\
    pack: org
    rules:
      - id: a
        then:
          form: github.pr_checklist
    """
)


def _errors(
    text: str, file: str = "rules/org.yaml"
) -> list[tuple[str, int | None, int | None, str]]:
    with pytest.raises(RuleSetError) as caught:
        parse_pack(text, file)
    return [(e.file, e.line, e.column, e.message) for e in caught.value.errors]


def _one_error(text: str) -> tuple[int | None, int | None, str]:
    errors = _errors(text)
    assert len(errors) == 1, errors
    file, line, column, message = errors[0]
    assert file == "rules/org.yaml"
    return line, column, message


ERROR_CASES = [
    (
        "yaml-syntax-unclosed-flow",
        """\
        pack: org
        rules:
          - id: a
            then: {form: github.pr_checklist
        """,
        (5, 1),
        "YAML:",
    ),
    (
        "yaml-syntax-bad-indentation",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
             due: 7d
        """,
        (6, 6),
        "YAML:",
    ),
    (
        "yaml-tab-indentation",
        "pack: org\nrules:\n  - id: a\n\tthen: {}\n",
        (4, 1),
        "YAML:",
    ),
    (
        "unknown-key-in-lesson",
        """\
        pack: org
        rules:
          - id: a
            lesson:
              tagz: [db]
            then:
              form: github.pr_checklist
        """,
        (5, 7),
        "rules.0.lesson.tagz: unknown key 'tagz'",
    ),
    (
        "unknown-key-in-second-rule-work-item",
        """\
        pack: org
        rules:
          - id: a
            then:
              suppress: true
          - id: b
            work_item:
              systems: [github]
              path: ["src/**"]
            then:
              form: github.pr_checklist
        """,
        (9, 7),
        "rules.1.work_item.path: unknown key 'path'",
    ),
    (
        "unknown-key-in-action",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
              mandatory: required
        """,
        (6, 7),
        "unknown key 'mandatory'",
    ),
    (
        "unknown-top-level-key",
        """\
        pack: org
        budgets:
          max_items_per_work_item: 3
        rules:
          - id: a
            then: {suppress: true}
        """,
        (2, 1),
        "budgets: unknown key 'budgets'",
    ),
    (
        "missing-then",
        """\
        pack: org
        rules:
          - id: a
            lesson:
              tags: [db]
        """,
        (3, 5),
        "rules.0.then: missing required key 'then'",
    ),
    (
        "missing-rule-id",
        """\
        pack: org
        rules:
          - lesson: {tags: [db]}
            then: {suppress: true}
        """,
        (3, 5),
        "rules.0.id: missing required key 'id'",
    ),
    (
        "missing-pack-name",
        """\
        level: organisation
        rules:
          - id: a
            then: {suppress: true}
        """,
        (1, 1),
        "pack: missing required key 'pack'",
    ),
    (
        "bad-form",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.checklist
        """,
        (5, 13),
        "rules.0.then.form: Input should be 'jira.checklist'",
    ),
    (
        "bad-system-in-list",
        """\
        pack: org
        rules:
          - id: a
            work_item:
              systems: [github, gitlab]
            then: {suppress: true}
        """,
        (5, 25),
        "rules.0.work_item.systems.1: Input should be 'jira', 'github' or 'lms'",
    ),
    (
        "bad-duration",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
              due: 3 days
        """,
        (6, 12),
        "rules.0.then.due: '3 days' is not a duration like 48h, 14d or 2w",
    ),
    (
        "bad-severity",
        """\
        pack: org
        rules:
          - id: a
            lesson: {min_severity: sev1}
            then: {suppress: true}
        """,
        (4, 28),
        "rules.0.lesson.min_severity",
    ),
    (
        "negative-priority",
        """\
        pack: org
        rules:
          - id: a
            priority: -1
            then: {suppress: true}
        """,
        (4, 15),
        "rules.0.priority: Input should be greater than or equal to 0",
    ),
    (
        "zero-budget",
        """\
        pack: org
        budget: {max_items_per_work_item: 0}
        rules:
          - id: a
            then: {suppress: true}
        """,
        (2, 35),
        "budget.max_items_per_work_item",
    ),
    (
        "rule-id-with-capitals",
        """\
        pack: org
        rules:
          - id: Pool-Rule
            then: {suppress: true}
        """,
        (3, 9),
        "rules.0.id: String should match pattern",
    ),
    (
        "empty-rules",
        """\
        pack: org
        rules: []
        """,
        (2, 8),
        "rules: Tuple should have at least 1 item",
    ),
    (
        "template-unknown-variable",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
              text: "{{ lesson.title }} for {{ secrets.token }}"
        """,
        (6, 13),
        "rules.0.then.text: template uses unknown variables ['secrets']",
    ),
    (
        "template-bad-syntax",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
              text: "{{ lesson.title "
        """,
        (6, 13),
        "rules.0.then.text: template syntax:",
    ),
    (
        "template-unclosed-block",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
              text: "{% for c in lesson.checklist %}{{ c }}"
        """,
        (6, 13),
        "template syntax:",
    ),
    (
        "form-and-suppress",
        """\
        pack: org
        rules:
          - id: a
            then:
              form: github.pr_checklist
              suppress: true
        """,
        (5, 7),
        "rules.0.then: give exactly one of `form` or `suppress: true`",
    ),
    (
        "neither-form-nor-suppress",
        """\
        pack: org
        rules:
          - id: a
            then:
              due: 7d
        """,
        (5, 7),
        "give exactly one of `form` or `suppress: true`",
    ),
    (
        "team-pack-without-team",
        """\
        pack: payments
        level: team
        rules:
          - id: a
            then: {suppress: true}
        """,
        (1, 1),
        "a team pack names its `team`",
    ),
    (
        "organisation-pack-with-team",
        """\
        pack: org
        team: payments
        rules:
          - id: a
            then: {suppress: true}
        """,
        (1, 1),
        "a team pack names its `team`",
    ),
    (
        "form-incompatible-with-systems",
        """\
        pack: org
        rules:
          - id: a
            work_item:
              systems: [jira]
            then:
              form: github.pr_checklist
        """,
        (3, 5),
        "rules.0: form github.pr_checklist cannot be placed in",
    ),
    (
        "not-a-mapping",
        """\
        - pack: org
        """,
        (1, 1),
        "expected a mapping with `pack` and `rules`",
    ),
    (
        "empty-file",
        "",
        (1, 1),
        "expected a mapping with `pack` and `rules`",
    ),
    (
        "two-documents",
        "pack: a\nrules: [{id: a, then: {suppress: true}}]\n---\npack: b\n",
        (3, 1),
        "YAML:",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_error_names_file_line_and_column(text: str, where: tuple[int, int], message: str) -> None:
    line, column, found = _one_error(dedent(text))
    assert (line, column) == where, found
    assert message in found


def test_error_string_is_file_line_column_message() -> None:
    error = RuleError("rules/org.yaml", 5, 7, "rules.0.lesson.tagz: unknown key 'tagz'")
    assert str(error) == "rules/org.yaml:5:7: rules.0.lesson.tagz: unknown key 'tagz'"
    with pytest.raises(RuleSetError, match=r"^rules/org\.yaml:5:7: rules\.0\.lesson\.tagz"):
        parse_pack(
            "pack: org\nrules:\n  - id: a\n    lesson:\n      tagz: [db]\n"
            "    then: {suppress: true}\n",
            "rules/org.yaml",
        )


def test_every_error_in_a_file_is_reported() -> None:
    text = dedent(
        """\
        pack: org
        rules:
          - id: a
            lesson:
              tagz: [db]
            work_item:
              systems: [gitlab]
            then:
              form: github.pr_checklist
              due: soon
          - id: b
            then: {}
        """
    )
    assert _errors(text) == [
        ("rules/org.yaml", 5, 7, "rules.0.lesson.tagz: unknown key 'tagz'"),
        (
            "rules/org.yaml",
            7,
            17,
            "rules.0.work_item.systems.0: Input should be 'jira', 'github' or 'lms'",
        ),
        (
            "rules/org.yaml",
            10,
            12,
            "rules.0.then.due: 'soon' is not a duration like 48h, 14d or 2w",
        ),
        (
            "rules/org.yaml",
            12,
            11,
            "rules.1.then: give exactly one of `form` or `suppress: true`",
        ),
    ]


def test_errors_from_several_files_are_all_reported() -> None:
    files = [
        ("a.yaml", "pack: a\nrules:\n  - id: x\n    then: {form: nope}\n"),
        ("b.yaml", VALID.replace("org", "b")),
        ("c.yaml", "pack: c\nrules: [\n"),
    ]
    with pytest.raises(RuleSetError) as caught:
        build_rule_set(files)
    assert [(e.file, e.line) for e in caught.value.errors] == [("a.yaml", 4), ("c.yaml", 3)]


def test_duplicate_rule_ids_are_reported_at_each_repeat() -> None:
    text = dedent(
        """\
        pack: org
        rules:
          - id: a
            then: {suppress: true}
          - id: b
            then: {suppress: true}
          - id: a
            then: {form: github.pr_checklist}
          - id: a
            then: {suppress: true}
        """
    )
    assert _errors(text) == [
        (
            "rules/org.yaml",
            7,
            9,
            "rules.2.id: rule ids repeat within the pack: ['a'] (first at rules.0)",
        ),
        (
            "rules/org.yaml",
            9,
            9,
            "rules.3.id: rule ids repeat within the pack: ['a'] (first at rules.0)",
        ),
    ]


def test_duplicate_rule_ids_and_other_errors_are_all_reported() -> None:
    text = dedent(
        """\
        pack: org
        rules:
          - id: a
            then: {suppress: true, due: soon}
          - id: a
            then: {suppress: true}
        """
    )
    # in line order, although pydantic finds the repeated id (line 5) after the bad `due` (line 4)
    assert [(line, column) for _, line, column, _ in _errors(text)] == [(4, 33), (5, 9)]


def test_errors_are_in_file_and_line_order_without_pydantic_prefixes() -> None:
    bad = dedent(
        """\
        pack: org
        rules:
          - id: a
            then: {suppress: true, due: soon}
          - id: b
            then: {form: github.pr_checklist, suppress: true}
          - id: a
            then: {form: github.pr_checklist, due: 3 days}
        """
    )
    files = [("z.yaml", bad.replace("org", "z")), ("a.yaml", bad.replace("org", "a"))]
    with pytest.raises(RuleSetError) as caught:
        build_rule_set(files)
    errors = caught.value.errors
    positions = [(e.file, e.line, e.column) for e in errors]
    assert len(errors) == 8, errors
    assert positions == sorted(positions, key=lambda p: (p[0], p[1] or 0, p[2] or 0))
    assert [e.file for e in errors] == ["a.yaml"] * 4 + ["z.yaml"] * 4
    assert [e.line for e in errors[:4]] == [4, 6, 7, 8]
    assert not [e for e in errors if "Value error" in e.message], errors
    assert "rules.0.then.due: 'soon' is not a duration like 48h, 14d or 2w" in str(caught.value)
    lines = str(caught.value).splitlines()
    assert lines == [str(e) for e in errors]


def test_an_error_without_a_position_names_only_the_file() -> None:
    error = RuleError("rules/missing", None, None, "no such file or directory")
    assert str(error) == "rules/missing: no such file or directory"
    assert str(RuleError("rules/org.yaml", 3, None, "m")) == "rules/org.yaml:3: m"
    later = RuleError("rules/missing", 1, 1, "later")
    assert RuleSetError([later, error]).errors == (error, later)


def test_duplicate_pack_names_across_files() -> None:
    second = "# Payments rules.\n# Owned by the payments team.\n" + VALID
    with pytest.raises(RuleSetError) as caught:
        build_rule_set([("one.yaml", VALID), ("two.yaml", second)])
    (error,) = caught.value.errors
    assert (error.file, error.line, error.column) == ("two.yaml", 3, 7)
    assert error.message == "pack 'org' is also in one.yaml"


@pytest.mark.parametrize(
    ("text", "where", "key"),
    [
        (
            """\
            pack: org
            rules:
              - id: a
                priority: 900
                then:
                  form: github.pr_checklist
                priority: 1
            """,
            (7, 5),
            "priority",
        ),
        ("pack: org\npack: other\nrules: [{id: a, then: {suppress: true}}]\n", (2, 1), "pack"),
        (
            "pack: org\nrules:\n  - id: a\n    lesson: {tags: [db], tags: [ui]}\n"
            "    then: {suppress: true}\n",
            (4, 26),
            "tags",
        ),
    ],
    ids=["in-a-rule", "top-level", "flow-mapping"],
)
def test_a_repeated_key_is_an_error(text: str, where: tuple[int, int], key: str) -> None:
    """PyYAML alone keeps the last of two equal keys; rule files refuse them."""
    line, column, message = _one_error(dedent(text))
    assert (line, column) == where
    assert message == f"YAML: repeated key {key!r}"


@pytest.mark.parametrize("text", ["48h", "14d", "2w", "0d"])
def test_valid_durations(text: str) -> None:
    assert parse_duration(text).total_seconds() >= 0


@pytest.mark.parametrize("text", ["3 days", "14", "d", "1.5d", "-1d", "14D", "1m", " 14d"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def _example_files() -> list[tuple[str, str]]:
    return [(p.name, p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))]


def test_example_packs_load() -> None:
    rules = build_rule_set(_example_files())
    assert [p.pack for p in rules.packs] == ["organisation", "team-payments", "training"]
    assert [p.level for p in rules.packs] == [Level.ORGANISATION, Level.TEAM, Level.ORGANISATION]
    assert rules.sources == ("organisation.yaml", "team-payments.yaml", "training.yaml")
    assert rules.organisation_budget.max_items_per_work_item == 5
    assert rules.team_budget("payments").max_items_per_work_item == 3
    assert rules.team_budget("web").max_items_per_work_item == 5
    rule: Rule = rules.packs[1].rules[0]
    assert rule.then.form == EmbeddingForm.GITHUB_PR_CHECKLIST
    assert rule.work_item.projects == ("acme/payments-*",)


def test_version_is_stable_for_the_same_files() -> None:
    files = _example_files()
    first = build_rule_set(files).version
    assert build_rule_set(list(files)).version == first
    assert build_rule_set(list(reversed(files))).version == first
    assert len(first) == 12


@pytest.mark.parametrize("which", [0, 1], ids=["organisation", "team"])
@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t + "\n",
        lambda t: "# a comment\n" + t,
        lambda t: t.replace("priority: 100", "priority: 101", 1),
    ],
    ids=["trailing-newline", "comment", "priority"],
)
def test_version_changes_when_any_file_text_changes(which: int, edit: Any) -> None:
    files = _example_files()
    before = build_rule_set(files).version
    name, text = files[which]
    changed = list(files)
    changed[which] = (name, edit(text))
    assert edit(text) != text
    assert build_rule_set(changed).version != before


def test_version_changes_when_a_file_is_added_or_renamed() -> None:
    files = _example_files()
    before = build_rule_set(files).version
    extra = ("zz.yaml", VALID.replace("org", "extra"))
    assert build_rule_set([*files, extra]).version != before
    renamed = [("renamed.yaml", files[0][1]), files[1]]
    assert build_rule_set(renamed).version != before


def test_rule_set_can_be_built_from_packs() -> None:
    pack = parse_pack(VALID, "org.yaml")
    rules = RuleSet(packs=(pack,), version="test")
    assert rules.organisation_budget.max_items_per_work_item == 5


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_json_schema() -> None:
    schema = json.loads(json.dumps(Pack.model_json_schema()))
    assert schema["type"] == "object"
    assert {"pack", "rules"} <= set(schema["required"])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["rules"]["type"] == "array"
    assert schema["properties"]["rules"]["minItems"] == 1
    definitions = schema["$defs"]
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/")
        assert ref.removeprefix("#/$defs/") in definitions
    for strict in ("Rule", "Action", "LessonCondition", "WorkItemCondition", "Budget"):
        assert definitions[strict]["additionalProperties"] is False, strict
    assert set(definitions["EmbeddingForm"]["enum"]) == {f.value for f in EmbeddingForm}
    assert "then" in definitions["Rule"]["required"]


@pytest.mark.parametrize("field", ["lesson.titel", "work_item.assignee", "rule.name"])
def test_a_template_naming_an_unknown_field_is_rejected_at_load(field: str) -> None:
    text = VALID + f'      text: "{{{{ {field} }}}}"\n'
    line, column, message = _one_error(text)
    assert (line, column) == (6, 13)
    assert field.split(".")[1] in message


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("pack: a\npriority: " + "9" * 5000 + "\nrules: []\n", "digits"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
    ids=["long-number", "deep-nesting"],
)
def test_unreadable_yaml_is_a_rule_error_naming_the_file(text: str, found: str) -> None:
    with pytest.raises(RuleSetError) as raised:
        build_rule_set([("hostile.yaml", text)])
    [error] = raised.value.errors
    assert error.file == "hostile.yaml" and found in error.message
