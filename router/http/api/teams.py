"""`/api/v1/teams`: the team → members map training is assigned to; `platform` changes it."""

from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from starlette.concurrency import run_in_threadpool

from core.access import Permission
from core.base import NO_CONTROL_CHARACTERS
from core.errors import ConflictError, describe_validation_error
from core.team import Member, Team, TeamFileError
from router.access.teams import TeamService
from router.compose import Runtime
from router.http.api.schemas import TeamCounts, TeamsImported
from router.http.errors import problem
from router.http.guard import Acting, policy


def _reason(errors: Sequence[Any], limit: int = 5) -> str:
    """Where and what, never the input: a client's text may not even be encodable."""
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}"
        for e in errors[:limit]
    ]
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class _ReasonedRoute(APIRoute):
    """Answers a request that does not fit the route's typed parameters with a 422 and a
    reason, like every other refusal, instead of FastAPI's answer that echoes the input."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def reasoned(request: Request) -> Response:
            try:
                return await handle(request)
            except RequestValidationError as exc:
                return problem(422, _reason(exc.errors()))

        return reasoned


router = APIRouter(prefix="/api/v1/teams", tags=["teams"], route_class=_ReasonedRoute)
MAX_FILE_CHARACTERS = 10 * 1024 * 1024


def _service(request: Request) -> TeamService:
    runtime: Runtime = request.app.state.runtime
    return TeamService(runtime.db)


class TeamMembers(BaseModel):
    """A team's members, replacing whatever it held; an empty list removes the team."""

    model_config = ConfigDict(strict=True, extra="forbid")

    members: list[Member] = Field(max_length=100_000)

    @field_validator("members")
    @classmethod
    def _each_person_once(cls, members: list[Member]) -> list[Member]:
        seen: set[str] = set()
        for member in members:
            if member.person in seen:
                raise ValueError(f"person {member.person!r} is listed twice")
            seen.add(member.person)
        return members


class TeamFileUpload(BaseModel):
    """A teams file as text: YAML, or CSV when `filename` ends in `.csv`."""

    model_config = ConfigDict(strict=True, extra="forbid")

    filename: Annotated[
        str,
        StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL_CHARACTERS),
    ] = Field(description="Named in every error (`FILE:LINE: …`); `*.csv` is read as CSV.")
    text: str = Field(max_length=MAX_FILE_CHARACTERS)


@router.get("", response_model=list[Team], openapi_extra=policy(Permission.READ))
async def list_teams(request: Request) -> Any:
    """Every team with its members, by name."""
    found = await run_in_threadpool(_service(request).list)
    return list(found)


@router.get("/{team}", response_model=Team, openapi_extra=policy(Permission.READ))
async def get_team(request: Request, team: str) -> Any:
    """One team and its members (404 when no team of that name has members)."""
    found = await run_in_threadpool(_service(request).get, team)
    if found is None:
        return problem(404, f"no team {team!r}")
    return found


@router.put("/{team}", response_model=TeamCounts, openapi_extra=policy(Permission.OPERATE))
async def put_team(request: Request, actor: Acting, team: str, body: TeamMembers) -> Any:
    """Make the team exactly these members (audited as `team.imported`): how many were added,
    changed and removed. 422 for a bad team name or a person listed twice, 409 when an email,
    LMS id or login already names another person."""
    try:
        counts = await run_in_threadpool(_service(request).put, team, body.members, actor)
    except ValidationError as exc:
        return problem(422, describe_validation_error(exc))
    except ConflictError as exc:
        return problem(409, str(exc))
    return {"team": team.strip(), **counts}


@router.post("/import", response_model=TeamsImported, openapi_extra=policy(Permission.OPERATE))
async def import_teams(request: Request, actor: Acting, body: TeamFileUpload) -> Any:
    """Replace every team the file lists, all or nothing: per team how many members were added,
    changed and removed. 422 with every problem as `FILE:LINE: …` in `errors`."""
    try:
        done = await run_in_threadpool(
            _service(request).import_file, body.text, body.filename, actor
        )
    except TeamFileError as exc:
        return JSONResponse(
            {"status": "rejected", "reason": exc.errors[0], "errors": exc.errors}, 422
        )
    except ConflictError as exc:
        return problem(409, str(exc))
    return {"teams": done, "changed": any(any(c.values()) for c in done.values())}
