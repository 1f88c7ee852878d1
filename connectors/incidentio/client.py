"""incident.io API subset: re-fetch an incident (and its follow-ups) when a webhook is thin."""

from urllib.parse import quote

from pydantic import ValidationError

from connectors.incidentio.mapping import combine, to_incident
from connectors.incidentio.models import FollowUp, IoIncident
from connectors.json_api import JsonApi
from connectors.retrying import RetryPolicy
from core.errors import PayloadError, describe_validation_error
from core.incident import Incident

DEFAULT_URL = "https://api.incident.io"


class IncidentIoClient(JsonApi):
    """Reads incidents; every failure is a Cairn error (TransientError once retries run out)."""

    vendor = "incident.io"
    credential = "api_key"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_URL,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        super().__init__(base_url, headers, policy=policy, timeout=timeout)

    def incident(self, incident_id: str) -> Incident | None:
        """`GET /v2/incidents/{id}` plus its follow-ups as action items (None: declined etc.)."""
        data = self.get(f"/v2/incidents/{quote(incident_id, safe='')}", "incident")
        follow_ups = self.get("/v2/follow_ups", "follow-ups", {"incident_id": incident_id})
        listed = follow_ups.get("follow_ups") or []
        if not isinstance(listed, list):
            raise PayloadError("incident.io follow-ups: `follow_ups` is not a list")
        try:
            incident = IoIncident.model_validate(data.get("incident"))
            items = [FollowUp.model_validate(f) for f in listed]
            return to_incident(incident, items)
        except ValidationError as exc:
            raise PayloadError(f"incident.io incident: {describe_validation_error(exc)}") from exc

    def enrich(self, incident: Incident) -> Incident:
        """The incident as incident.io holds it now, keeping a finished postmortem's status."""
        fetched = self.incident(incident.external_id)
        return incident if fetched is None else combine(fetched, incident)
