"""Cairn's errors raised by API handlers, answered as JSON problems in one place."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from core.errors import ConflictError, NotFoundError, describe_validation_error


def problem(status: int, reason: str) -> JSONResponse:
    """A refusal with its HTTP status and a reason a person can act on."""
    return JSONResponse({"status": "rejected", "reason": reason}, status_code=status)


def install_error_answers(app: FastAPI) -> None:
    """The one place that turns Cairn's errors raised by API handlers into HTTP answers."""

    async def answer(_request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return problem(404, str(exc))
        if isinstance(exc, ValidationError):
            return problem(422, describe_validation_error(exc))
        return problem(409, str(exc))

    for error in (NotFoundError, ConflictError, ValidationError):
        app.add_exception_handler(error, answer)
