"""Deny by default: every route declares a policy, and one app-wide dependency enforces it.

`guard` runs before any other dependency or parameter of every route and applies the policy the
route declared with `policy(...)`: open (`public`), authenticated by the sender's signature in
the handler (`signed`), the optional scrape token (`metrics`), any principal (`authenticated`),
or a permission that the principal's roles must grant. A route that declares nothing is refused.
It also refuses bodies of a type the route does not accept (415), so a web page on another site
cannot post a form or `text/plain` to a JSON endpoint, and slows down clients that keep
presenting bad credentials (429). Only a body that claims to be JSON and does not parse is
answered (400/422 by FastAPI) before the guard runs, since FastAPI reads it first.
"""

import hmac
import time
from collections import OrderedDict
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from core.access import Permission, Principal, normalise_person, roles_granting
from core.errors import AuthenticationError
from router.access.tokens import TokenService
from router.compose import Runtime
from router.http.errors import Refusal
from router.http.session import CSRF_FIELD, Sessions
from router.settings import Settings

POLICY_KEY = "x-cairn-policy"
ACCEPTS_KEY = "x-cairn-accepts"
SESSION_KEY = "x-cairn-session"
JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REALM = 'Bearer realm="cairn"'


class Access(StrEnum):
    """Policies that are not a permission."""

    PUBLIC = "public"
    SIGNED = "signed"
    METRICS = "metrics"
    AUTHENTICATED = "authenticated"


Policy = Access | Permission


def policy(
    declared: Policy, *, accepts: tuple[str, ...] = JSON_TYPES, session: bool = False
) -> dict[str, Any]:
    """A route's declared policy (and the body types it accepts), for `openapi_extra`.

    `session`: a dashboard page, which also admits the dashboard's session cookie and checks
    the form token of every change made with it.
    """
    extra: dict[str, Any] = {POLICY_KEY: declared.value, ACCEPTS_KEY: list(accepts)}
    if session:
        extra[SESSION_KEY] = True
    return extra


def page_policy(declared: Policy) -> dict[str, Any]:
    """The policy of a dashboard route: forms in, session cookie admitted."""
    return policy(declared, accepts=FORM_TYPES, session=True)


def declared_policy(route: APIRoute) -> Policy | None:
    """The policy a route declared, if any.

    FastAPI's own documentation routes (`/openapi.json`, `/docs`) are not API routes: the
    app-wide dependency does not run for them, and they stay public.
    """
    value = str((route.openapi_extra or {}).get(POLICY_KEY))
    if value in {a.value for a in Access}:
        return Access(value)
    if value in {p.value for p in Permission}:
        return Permission(value)
    return None


class FailureLimiter:
    """Counts failed logins per client in one-minute windows; bounded in memory.

    One process's memory: behind several API replicas each keeps its own count, so a client
    gets that many times the limit; a shared limit belongs in the proxy or load balancer.
    """

    def __init__(self, per_minute: int, *, clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self._clients = clients
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds the client must wait, or None when it may try."""
        now = time.monotonic() if now is None else now
        start, count = self._windows.get(client, (now, 0))
        if now - start >= 60 or count < self.per_minute:
            return None
        return max(1, int(60 - (now - start)) + 1)

    def failed(self, client: str, now: float | None = None) -> None:
        """Count one failed login."""
        now = time.monotonic() if now is None else now
        start, count = self._windows.pop(client, (now, 0))
        if now - start >= 60:
            start, count = now, 0
        self._windows[client] = (start, count + 1)
        while len(self._windows) > self._clients:
            self._windows.popitem(last=False)

    def refund(self, client: str) -> None:
        """Take back one count (a login counted in advance that succeeded)."""
        if client in self._windows:
            start, count = self._windows[client]
            self._windows[client] = (start, max(0, count - 1))


def _unauthenticated(reason: str) -> Refusal:
    return Refusal(401, reason, {"WWW-Authenticate": _REALM})


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _proxied(headers: Headers, settings: Settings) -> Principal | None:
    """The person an authenticating proxy vouches for, when proxy mode is on and it is used."""
    user_header = settings.trusted_user_header
    if not user_header or settings.trusted_proxy_secret is None:
        return None
    identity = (user_header, settings.trusted_groups_header, settings.trusted_proxy_secret_header)
    if any(len(headers.getlist(name)) > 1 for name in identity):
        # A proxy that appends rather than replaces would pass the client's copy along too.
        raise _unauthenticated("identity headers must appear once each")
    user = headers.get(user_header)
    proof = headers.get(settings.trusted_proxy_secret_header)
    if user is None and proof is None:
        return None
    if proof is None or not _same(proof, settings.trusted_proxy_secret.get_secret_value()):
        raise _unauthenticated("the identity headers did not come from the trusted proxy")
    if user is None:
        raise _unauthenticated(f"the trusted proxy sent no {user_header} header")
    try:
        # Header bytes arrive as latin-1 text; proxies send names as UTF-8.
        person = normalise_person(user.encode("latin-1").decode("utf-8"))
    except ValueError as exc:
        raise _unauthenticated(f"unusable user name: {exc}") from None
    groups = {g.strip() for g in headers.get(settings.trusted_groups_header, "").split(",")}
    grants = [settings.group_grants[g] for g in sorted(groups) if g in settings.group_grants]
    return Principal(
        id=f"user:{person}",
        roles=frozenset(role for role, _ in grants),
        teams=frozenset(team for _, team in grants if team is not None),
    )


async def authenticate(headers: Headers, runtime: Runtime) -> Principal:
    """The principal a request acts for (proxy identity, then bearer token), or a Refusal."""
    principal = _proxied(headers, runtime.settings)
    if principal is not None:
        return principal
    token = _bearer(headers)
    if token is None:
        raise _unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    try:
        return await run_in_threadpool(TokenService(runtime.db).authenticate, token)
    except AuthenticationError as exc:
        raise _unauthenticated(str(exc)) from None


def _check_body_type(
    method: str, headers: Headers, route: APIRoute, *, require: bool = False
) -> None:
    if method not in _BODY_METHODS:
        return
    accepts = (route.openapi_extra or {}).get(ACCEPTS_KEY, JSON_TYPES)
    media = headers.get("content-type")
    if media is None:
        no_body = headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
        if no_body and not require:
            return  # no body at all
        raise Refusal(415, f"send the body as {' or '.join(accepts)}")
    if media.split(";", 1)[0].strip().lower() not in accepts:
        raise Refusal(415, f"send the body as {' or '.join(accepts)}, not {media.split(';')[0]}")


class Guard:
    """The app-wide dependency that applies each route's declared policy."""

    def __init__(self, failures_per_minute: int) -> None:
        self.limiter = FailureLimiter(failures_per_minute)

    async def __call__(self, request: Request) -> Principal | None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            raise Refusal(403, "no access policy is declared for this route")
        principal = await self._admit(request, route)
        request.state.principal = principal
        return principal

    async def _admit(self, request: Request, route: APIRoute) -> Principal | None:
        declared = declared_policy(route)
        if declared is None:
            raise Refusal(403, "no access policy is declared for this route")
        if declared in (Access.PUBLIC, Access.SIGNED):
            return None
        headers = request.headers
        runtime: Runtime = request.app.state.runtime
        client = request.client.host if request.client else "unknown"
        wait = self.limiter.retry_after(client)
        if wait is not None:
            raise Refusal(
                429, "too many failed logins; try again later", {"Retry-After": str(wait)}
            )
        if declared == Access.METRICS:
            self._check_scrape_token(headers, runtime.settings, client)
            return None
        # Credentials are counted as a failure before they are checked and refunded when they
        # hold, so requests racing each other cannot all slip under the limit.
        presented = _presented(headers, runtime.settings)
        page = bool((route.openapi_extra or {}).get(SESSION_KEY))
        if presented:
            self.limiter.failed(client)
            principal = await authenticate(headers, runtime)
            self.limiter.refund(client)
        elif page:
            principal = await _session_principal(request, runtime)
        else:
            principal = await authenticate(headers, runtime)
        request.state.principal = principal
        if isinstance(declared, Permission) and not principal.can(declared):
            needed = " or ".join(role.value for role in roles_granting(declared))
            raise Refusal(403, f"this needs the role {needed}")
        if page and request.method in _BODY_METHODS and "authorization" not in headers:
            _check_body_type(request.method, headers, route, require=True)
            await _check_form_token(request, principal)
        # A browser sends the proxy's session cookie along with any cross-site request; a JSON
        # content type cannot be set without a preflight, so every change made as a proxied
        # person must carry one, with or without a body.
        _check_body_type(request.method, headers, route, require=principal.id.startswith("user:"))
        return principal

    def _check_scrape_token(self, headers: Headers, settings: Settings, client: str) -> None:
        expected = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        if not expected:
            return
        token = _bearer(headers)
        if token is None or not _same(token, expected):
            if token is not None:
                self.limiter.failed(client)
            raise _unauthenticated("the metrics scrape token is missing or wrong")


def _presented(headers: Headers, settings: Settings) -> bool:
    """Whether the request carried credentials at all (only those failures count as guesses)."""
    proxy_headers = (settings.trusted_user_header, settings.trusted_proxy_secret_header)
    return "authorization" in headers or any(h and h in headers for h in proxy_headers)


async def _session_principal(request: Request, runtime: Runtime) -> Principal:
    """The principal of the dashboard session cookie, or a 401 (which a page turns into the
    sign-in form)."""
    sessions: Sessions = request.app.state.sessions
    session = sessions.read(request)
    if session is None:
        raise _unauthenticated("sign in to use the dashboard")
    try:
        principal = await run_in_threadpool(
            TokenService(runtime.db).principal_by_id, session.token_id
        )
    except AuthenticationError:
        raise _unauthenticated("your sign-in has ended; sign in again") from None
    request.state.session = session
    return principal


async def _check_form_token(request: Request, principal: Principal) -> None:
    """Every change made from a dashboard page carries the form token of that page."""
    try:
        form = await request.form()
    except Exception:
        raise Refusal(400, "the form could not be read") from None
    sessions: Sessions = request.app.state.sessions
    session = getattr(request.state, "session", None)
    if not sessions.form_token_holds(form.get(CSRF_FIELD), principal, session):
        raise Refusal(403, "the form token is missing or stale; reload the page and try again")


def acting_principal(request: Request) -> Principal:
    """The principal the guard authenticated for this request (the guard ran first)."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise RuntimeError(f"{request.url.path} declares no policy that authenticates")
    return principal


Acting = Annotated[Principal, Depends(acting_principal)]
"""A handler parameter: who is acting, as the server established it."""
