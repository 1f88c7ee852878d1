"""Item text templates: Jinja syntax in a sandbox, with a closed set of variables."""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

VARIABLES = frozenset({"lesson", "work_item", "rule", "due"})
"""The only names a template may use."""

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


class TemplateError(ValueError):
    """A template that does not parse, or uses a variable outside the closed set."""


def check(source: str) -> None:
    """Reject templates that do not parse or name variables other than `VARIABLES`."""
    try:
        unknown = meta.find_undeclared_variables(_ENV.parse(source)) - VARIABLES
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax: {exc.message}") from exc
    if unknown:
        raise TemplateError(
            f"template uses unknown variables {sorted(unknown)}; allowed: {sorted(VARIABLES)}"
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
    return text
