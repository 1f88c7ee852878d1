"""Dashboard sign-in: a signed session cookie, and the form token every dashboard change carries.

A person signs in once with an API token; the cookie then holds only that token's public id, a
random nonce and the time, signed with CAIRN_UI_SECRET (itsdangerous). Each request looks the
token up again, so revoking it ends every session made with it. The cookie is HttpOnly,
SameSite=Strict, and Secure when the request came over HTTPS; it never holds the secret part of
the token. Behind the SSO proxy there is no cookie of Cairn's: the proxy vouches for each request.

Every dashboard form carries a token signed over (principal, nonce): a page on another site
cannot read it, so it cannot forge a change even where a browser would send the cookie along.
"""

import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from core.access import Principal
from router.settings import Settings

COOKIE = "cairn_session"
PRE_COOKIE = "cairn_signin"
"""A nonce set by the sign-in page and echoed by its form, so no other site can sign you in."""
CSRF_FIELD = "csrf"
CSRF_MAX_AGE = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """What a valid session cookie holds."""

    token_id: str
    nonce: str


class Sessions:
    """Issues and reads session cookies and form tokens with one signing key."""

    def __init__(self, settings: Settings) -> None:
        secret = settings.ui_secret
        key = secret.get_secret_value() if secret is not None else secrets.token_urlsafe(48)
        self._cookies = URLSafeTimedSerializer(key, salt="cairn.ui.session")
        self._forms = URLSafeTimedSerializer(key, salt="cairn.ui.form")
        self._signin = URLSafeTimedSerializer(key, salt="cairn.ui.signin")
        self.max_age = int(settings.ui_session_hours * 3600)

    def __repr__(self) -> str:
        return f"Sessions(max_age={self.max_age})"

    def read(self, request: Request) -> Session | None:
        """The session the request's cookie holds, when it is ours, intact and not too old."""
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > 1024:
            return None
        try:
            data = self._cookies.loads(raw, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        token_id, nonce = data.get("t"), data.get("n")
        if not isinstance(token_id, str) or not isinstance(nonce, str):
            return None
        return Session(token_id, nonce)

    def start(self, response: Response, request: Request, token_id: str) -> None:
        """Set a fresh session cookie (a new nonce, so old form tokens stop working)."""
        value = self._cookies.dumps({"t": token_id, "n": secrets.token_urlsafe(16)})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self.max_age,
            path="/ui",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )
        response.delete_cookie(PRE_COOKIE, path="/ui")

    @staticmethod
    def end(response: Response) -> None:
        """Clear the session cookie."""
        response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")

    def form_token(self, principal: Principal, session: Session | None) -> str:
        """The token a form of this principal's pages carries."""
        return str(self._forms.dumps({"p": principal.id, "n": session.nonce if session else ""}))

    def form_token_holds(
        self, presented: object, principal: Principal, session: Session | None
    ) -> bool:
        """Whether a posted form token was issued to this principal in this session."""
        if not isinstance(presented, str) or len(presented) > 1024:
            return False
        try:
            data = self._forms.loads(presented, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        expected = {"p": principal.id, "n": session.nonce if session else ""}
        return isinstance(data, dict) and data == expected

    def remember_signin(self, response: Response, request: Request, nonce: str) -> None:
        """Set the short-lived cookie that the sign-in form's nonce must match."""
        response.set_cookie(
            PRE_COOKIE,
            self._signin.dumps(nonce),
            max_age=3600,
            path="/ui",
            httponly=True,
            secure=request.url.scheme == "https",
            samesite="strict",
        )

    def signin_nonce_holds(self, request: Request, presented: object) -> bool:
        """Whether the sign-in form's nonce matches the cookie the sign-in page set."""
        raw = request.cookies.get(PRE_COOKIE)
        if not raw or not isinstance(presented, str) or len(raw) > 1024:
            return False
        try:
            nonce = self._signin.loads(raw, max_age=3600)
        except BadSignature:
            return False
        return isinstance(nonce, str) and secrets.compare_digest(nonce, presented)
