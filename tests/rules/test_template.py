"""Item templates: a closed set of variables, strict undefined values and a sandbox."""

from typing import Any

import pytest

from rules.template import VARIABLES, TemplateError, check, render

VARS: dict[str, Any] = {
    "lesson": {
        "id": "pool",
        "title": "Size the pool",
        "statement": "Measure first.",
        "checklist": ["a", "b"],
    },
    "work_item": {"ref": "github:acme/api#1", "team": "payments"},
    "rule": {"id": "r1", "description": ""},
    "due": "7d",
}


def test_the_closed_set_of_variables() -> None:
    assert frozenset({"lesson", "work_item", "rule", "due"}) == VARIABLES


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ lesson.title }}: {{ lesson.statement }}", "Size the pool: Measure first."),
        ("{{ lesson['id'] }} due {{ due }}", "pool due 7d"),
        ("{{ work_item.ref }} ({{ work_item.team | upper }})", "github:acme/api#1 (PAYMENTS)"),
        ("{% for c in lesson.checklist %}[ ] {{ c }} {% endfor %}", "[ ] a [ ] b "),
        ("{% if due %}by {{ due }}{% else %}whenever{% endif %}", "by 7d"),
        ("{% set n = lesson.checklist | length %}{{ n }} checks", "2 checks"),
        ("{{ rule.id ~ '/' ~ lesson.id }}", "r1/pool"),
        ("plain text", "plain text"),
        ("<b>{{ lesson.title }}</b> & more", "<b>Size the pool</b> & more"),
    ],
    ids=[
        "attributes",
        "item-access",
        "filter",
        "loop",
        "if",
        "set",
        "concat",
        "plain",
        "no-escape",
    ],
)
def test_render_allowed_variables(source: str, expected: str) -> None:
    check(source)
    assert render(source, VARS) == expected


@pytest.mark.parametrize(
    "source",
    [
        "{{ secrets }}",
        "{{ lesson.title }} {{ env.HOME }}",
        "{% for x in items %}{{ x }}{% endfor %}",
        "{% if config %}x{% endif %}",
        "{{ lesson.title }}{% set x = 1 %}{{ y }}",
        "{{ lesson.title | default(old) }}",
    ],
    ids=["unknown", "env", "loop", "if", "set-other-name", "filter-argument"],
)
def test_check_rejects_unknown_variables(source: str) -> None:
    with pytest.raises(TemplateError, match="unknown variables"):
        check(source)


@pytest.mark.parametrize(
    "source",
    ["{{ lesson.title ", "{% for x in lesson.checklist %}", "{{ }}", "{% endif %}", "{{ a b }}"],
    ids=["unclosed-print", "unclosed-for", "empty", "stray-end", "two-names"],
)
def test_check_rejects_bad_syntax(source: str) -> None:
    with pytest.raises(TemplateError, match="template syntax"):
        check(source)


def test_render_checks_too() -> None:
    with pytest.raises(TemplateError, match="unknown variables"):
        render("{{ secrets }}", VARS)


def test_render_passes_only_the_closed_set() -> None:
    """A caller's extra value is not visible, so a template cannot reach it."""
    with pytest.raises(TemplateError):
        render("{{ lesson.title }}", {"secrets": "x"})


@pytest.mark.parametrize(
    "source",
    [
        "{{ lesson.nope }}",
        "{{ lesson['nope'] }}",
        "{{ work_item.assignee }}",
        "{{ lesson.nope.deeper }}",
        "{% for c in lesson.missing %}{{ c }}{% endfor %}",
        "{{ lesson.nope | default('x') }}x",
    ],
    ids=["attribute", "item", "work-item-field", "chained", "loop-over-missing", "filter"],
)
def test_unknown_fields_are_rejected_before_anything_renders(source: str) -> None:
    with pytest.raises(TemplateError, match="unknown field"):
        check(source)
    with pytest.raises(TemplateError, match="unknown field"):
        render(source, VARS)


def test_missing_variable_is_an_error() -> None:
    """Only `lesson` is given here: `due` is in the closed set but undefined, which is an error."""
    with pytest.raises(TemplateError, match="template failed"):
        render("{{ due }}", {"lesson": VARS["lesson"]})


ESCAPES = [
    "{{ lesson.__class__ }}",
    "{{ lesson.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lesson.title.__class__.__base__.__subclasses__() }}",
    "{{ lesson['__class__'] }}",
    "{{ lesson | attr('__class__') }}",
    "{{ lesson.items.__self__ }}",
    "{{ lesson.title.format.__globals__ }}",
    "{{ (lesson.items | list).__class__ }}",
    "{{ ''.format.__self__ }}",
    "{{ ''.__class__.__mro__[1] }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ lesson.checklist.append('x') }}",
    "{{ lesson.update({'title': 'x'}) }}",
    "{{ lesson.clear() }}",
    "{{ lesson.pop('title') }}",
    "{{ lesson.checklist.pop() }}",
    "{{ lesson.setdefault('x', 1) }}",
]


@pytest.mark.parametrize("source", ESCAPES, ids=range(len(ESCAPES)))
def test_sandbox_blocks_private_attributes_and_mutation(source: str) -> None:
    variables = {
        "lesson": {"title": "t", "checklist": ["a"]},
        "work_item": {},
        "rule": {},
        "due": "",
    }
    with pytest.raises(TemplateError):
        check(source)
        render(source, variables)
    assert variables["lesson"] == {"title": "t", "checklist": ["a"]}


def test_template_error_is_a_value_error() -> None:
    """Pydantic turns it into a rule-file error with file:line:column (see test_loader)."""
    assert issubclass(TemplateError, ValueError)


@pytest.mark.parametrize(
    "source",
    ["{{ 'x' * 1000000 }}", "{{ lesson.checklist * 100000 }}", "{{ 10 ** 100000 }}"],
    ids=["string-repeat", "list-repeat", "power"],
)
def test_operators_that_build_huge_values_are_refused(source: str) -> None:
    with pytest.raises(TemplateError, match="only allowed between numbers"):
        render(source, VARS)


@pytest.mark.parametrize("name", ["range", "lipsum", "cycler", "joiner", "namespace", "dict"])
def test_jinja_globals_are_not_available(name: str) -> None:
    with pytest.raises(TemplateError, match="unknown variables"):
        check(f"{{{{ {name} }}}}")


def test_rendered_text_is_capped() -> None:
    long = {**VARS, "lesson": {**VARS["lesson"], "statement": "y" * 5000}}
    with pytest.raises(TemplateError, match="limit of 4000 characters"):
        render("{{ lesson.statement }}", long)
    assert render("{{ 6 * 7 }}", VARS) == "42"


@pytest.mark.parametrize(
    "source",
    [
        "{{ lesson.title | center(300000000) }}",
        "{{ '%300000000s' | format(lesson.title) }}",
        "{{ lesson.statement | wordwrap(1) }}",
        "{{ lesson.title | replace('a', lesson.statement) }}",
    ],
    ids=["center", "format", "wordwrap", "replace"],
)
def test_filters_that_can_inflate_text_are_refused(source: str) -> None:
    with pytest.raises(TemplateError, match="uses filters"):
        check(source)


def test_string_formatting_operator_is_refused() -> None:
    with pytest.raises(TemplateError, match="only allowed between numbers"):
        render("{{ '%300000000s' % lesson.title }}", VARS)


def test_nested_loops_are_refused() -> None:
    source = (
        "{% for a in lesson.statement %}{% for b in lesson.statement %}x{% endfor %}{% endfor %}"
    )
    with pytest.raises(TemplateError, match="nests loops"):
        check(source)
    assert render("{% for c in lesson.checklist %}- {{ c }}\n{% endfor %}", VARS).startswith("- ")
