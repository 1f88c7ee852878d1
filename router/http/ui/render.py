"""Rendering dashboard pages: escaped templates, the security headers every page sends, and
the HTML answers for refusals and errors on `/ui/` paths."""

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from core.access import Permission, Principal
from router.http.session import Sessions

HERE = Path(__file__).parent
STATIC = HERE / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["q"] = lambda value: quote(str(value), safe="")


def _urlencode(pairs: Any) -> str:
    """Query text from a dict or (name, value) pairs, leaving out empty values."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return urlencode([(k, str(v)) for k, v in items if v is not None and v != ""])


_env.globals["urlencode"] = _urlencode
templates = Jinja2Templates(env=_env)

NAV = (
    ("overview", "/ui/", "Overview"),
    ("lessons", "/ui/lessons", "Lessons"),
    ("review", "/ui/review", "Review queue"),
    ("compliance", "/ui/compliance", "Compliance"),
    ("rules", "/ui/rules", "Rules"),
)


def secured(response: Response) -> Response:
    """The headers every dashboard answer carries."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    section: str | None = None,
) -> Response:
    """A page for the signed-in principal: its form token, what its roles may do, the nav."""
    principal: Principal | None = getattr(request.state, "principal", None)
    sessions: Sessions = request.app.state.sessions
    page = {
        "principal": principal,
        "can": {p.value: bool(principal and principal.can(p)) for p in Permission},
        "csrf": (
            sessions.form_token(principal, getattr(request.state, "session", None))
            if principal is not None
            else ""
        ),
        "signed_in_by_cookie": getattr(request.state, "session", None) is not None,
        "nav": NAV,
        "section": section,
        **context,
    }
    response = templates.TemplateResponse(request, template, page, status_code=status)
    return secured(response)


def refusal(request: Request, status: int, reason: str) -> Response:
    """An error page with its status and the reason a person can act on."""
    return render(request, "error.html", {"status": status, "reason": reason}, status=status)


def page_error(request: Request, status: int, reason: str) -> Response:
    """A refusal or an error on a dashboard path, as a page (401: the sign-in form)."""
    if status == 401 and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = RedirectResponse(
            "/ui/sign-in?" + urlencode({"next": target, "why": reason}), status_code=303
        )
        return secured(response)
    return refusal(request, status, reason)
