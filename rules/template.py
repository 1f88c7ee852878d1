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


class _Sandbox(ImmutableSandboxedEnvironment):
    """No globals (`range`, `lipsum`, `dict` …), and no operator that can build huge values."""

    intercepted_binops = frozenset({"*", "**"})

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
    try:
        text: str = _compiled(source).render({k: variables[k] for k in VARIABLES if k in variables})
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"template failed: {exc}") from exc
    if len(text) > MAX_RENDERED:
        raise TemplateError(f"item text is {len(text)} characters; the limit is {MAX_RENDERED}")
    return text
