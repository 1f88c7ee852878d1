"""Cairn's errors raised by API handlers, answered as JSON problems in one place."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

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


def install_error_answers(app: FastAPI) -> None:
    """The one place that turns Cairn's errors raised by API handlers into HTTP answers."""

    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return problem(404, str(exc))
        if isinstance(exc, ForbiddenError):
            return problem(403, str(exc))
        if isinstance(exc, ValidationError):
            return problem(422, describe_validation_error(exc))
        return problem(409, str(exc))

    async def refuse(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refusal)
        body = {"status": "rejected", "reason": exc.reason}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    for error in (NotFoundError, ForbiddenError, ConflictError, ValidationError):
        app.add_exception_handler(error, answer)
    app.add_exception_handler(Refusal, refuse)
