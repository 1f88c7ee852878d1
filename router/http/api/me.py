"""`GET /api/v1/me`: who the server takes the caller for, with the roles and teams it holds."""

from fastapi import APIRouter

from core.access import GRANTS
from router.http.api.schemas import Me
from router.http.guard import Access, Acting, policy

router = APIRouter(prefix="/api/v1", tags=["access"])


@router.get("/me", response_model=Me, openapi_extra=policy(Access.AUTHENTICATED))
async def me(actor: Acting) -> dict[str, object]:
    """The acting principal: its id (as recorded in the audit log), roles, teams, permissions."""
    return {
        "id": actor.id,
        "roles": sorted(actor.roles),
        "teams": sorted(actor.teams),
        "permissions": sorted({p.value for role in actor.roles for p in GRANTS[role]}),
    }
