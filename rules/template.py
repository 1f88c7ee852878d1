"""Item text templates: Jinja syntax in a sandbox, with a closed set of variables and fields."""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIELDS: Mapping[str, frozenset[str]] = {
    "lesson": frozenset(
        {
            "id",
            "version",
            "title",
            "statement",
            "mandate",
            "form",
            "owner",
            "checklist",
            "adaptation_notes",
        }
    ),
    "work_item": frozenset({"ref", "title", "project", "team", "system", "type"}),
    "rule": frozenset({"id", "description"}),
    "due": frozenset(),
}
"""The only names a template may use, and the fields of each."""
VARIABLES = frozenset(FIELDS)

MAX_RENDERED = 4000
"""Longest item text a template may produce."""


FILTERS = frozenset(
    {"capitalize", "default", "first", "join", "last", "length", "lower", "title", "trim", "upper"}
)
"""Filters a template may use: none of them can make text much longer than its input."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """No globals (`range`, `lipsum`, `dict` …), and no operator that can build huge values."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" or not all(isinstance(v, int | float) for v in (left, right)):
            raise SecurityError(f"operator {operator!r} is only allowed between numbers")
        return super().call_binop(context, operator, left, right)


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False)
_ENV.globals.clear()


class TemplateError(ValueError):
    """A template that does not parse, or uses a name or field outside the closed set."""


def check(source: str) -> None:
    """Reject templates that do not parse or use names or fields other than `FIELDS`."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax: {exc.message}") from exc
    filters = {f.name for f in tree.find_all(nodes.Filter)} - FILTERS
    if filters:
        raise TemplateError(f"template uses filters {sorted(filters)}; allowed: {sorted(FILTERS)}")
    for loop in tree.find_all(nodes.For):
        if any(True for _ in loop.find_all(nodes.For)):
            raise TemplateError("template nests loops; one level of {% for %} is allowed")
    unknown = meta.find_undeclared_variables(tree) - VARIABLES
    if unknown:
        raise TemplateError(
            f"template uses unknown variables {sorted(unknown)}; allowed: {sorted(VARIABLES)}"
        )
    accesses: list[tuple[nodes.Expr, object]] = [
        (a.node, a.attr) for a in tree.find_all(nodes.Getattr)
    ]
    accesses += [
        (a.node, a.arg.value if isinstance(a.arg, nodes.Const) else None)
        for a in tree.find_all(nodes.Getitem)
    ]
    for target, field in accesses:
        if isinstance(target, nodes.Name) and target.name in FIELDS:
            allowed = FIELDS[target.name]
            if field not in allowed:
                raise TemplateError(
                    f"template uses unknown field {target.name}.{field}; allowed: {sorted(allowed)}"
                )


@lru_cache(maxsize=4096)
def _compiled(source: str) -> Any:
    check(source)
    return _ENV.from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render with only the closed set of variables (plain dicts and strings)."""
    context = {k: variables[k] for k in VARIABLES if k in variables}
    pieces: list[str] = []
    size = 0
    try:
        # Rendered piece by piece so an over-long text is stopped, not built whole.
        for piece in _compiled(source).generate(context):
            size += len(piece)
            if size > MAX_RENDERED:
                raise TemplateError(f"item text exceeds the limit of {MAX_RENDERED} characters")
            pieces.append(piece)
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"template failed: {exc}") from exc
    return "".join(pieces)
