"""Cairn's errors raised by API handlers, answered as JSON problems in one place."""

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import ConflictError, ForbiddenError, NotFoundError, describe_validation_error


def problem(status: int, reason: str) -> JSONResponse:
    """A refusal with its HTTP status and a reason a person can act on."""
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


class Refusal(Exception):
    """A request refused before its handler ran (authentication, rights, body type, limits)."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


PageAnswer = Callable[[Request, int, str], Response]


def _on_page(request: Request) -> bool:
    path = request.url.path
    return path == "/ui" or path.startswith("/ui/")


def install_error_answers(app: FastAPI, pages: PageAnswer | None = None) -> None:
    """The one place that turns Cairn's errors raised by handlers into HTTP answers: JSON
    problems for the API, and `pages(request, status, reason)` for dashboard paths."""

    async def answer(request: Request, exc: Exception) -> Response:
        if isinstance(exc, NotFoundError):
            status, reason = 404, str(exc)
        elif isinstance(exc, ForbiddenError):
            status, reason = 403, str(exc)
        elif isinstance(exc, ValidationError):
            status, reason = 422, describe_validation_error(exc)
        else:
            status, reason = 409, str(exc)
        if pages is not None and _on_page(request):
            return pages(request, status, reason)
        return problem(status, reason)

    async def refuse(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        if pages is not None and _on_page(request):
            answer = pages(request, exc.status, exc.reason)
            if "Retry-After" in exc.headers:
                answer.headers["Retry-After"] = exc.headers["Retry-After"]
            return answer
        body = {"status": "rejected", "reason": exc.reason}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        # FastAPI's own answer echoes the client's input, which can hold text that does not
        # encode (a lone surrogate) and turn a 422 into a 500: say where and what, never echo.
        assert isinstance(exc, RequestValidationError)
        found = [
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
            }
            for error in exc.errors()[:20]
        ]
        reason = "; ".join(
            f"{'.'.join(e['loc'][1:]) or e['loc'][0] if e['loc'] else 'body'}: {e['msg']}"
            for e in found[:5]
        )
        if pages is not None and _on_page(request):
            return pages(request, 422, reason or "the request is not valid")
        body = {
            "status": "rejected",
            "reason": reason or "the request is not valid",
            "errors": found,
        }
        return JSONResponse(body, status_code=422)

    async def http_error(request: Request, exc: Exception) -> Response:
        # FastAPI's own refusals (a body that is not JSON, an unknown path or method) in the
        # same shape as every other, with a reason instead of `detail`.
        assert isinstance(exc, StarletteHTTPException)
        reason = exc.detail if isinstance(exc.detail, str) else "the request was refused"
        if exc.status_code == 400 and "parsing the body" in reason:
            reason = "the body could not be read as the content type it declares"
        if pages is not None and _on_page(request):
            return pages(request, exc.status_code, reason)
        body = {"status": "rejected", "reason": reason}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    for error in (NotFoundError, ForbiddenError, ConflictError, ValidationError):
        app.add_exception_handler(error, answer)
    app.add_exception_handler(Refusal, refuse)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
