"""PagerDuty REST API v2 subset for enrichment: an incident, its notes, its custom fields.

httpx rather than the `pagerduty` package: that client sleeps inside its own retry loop and
retries 429 without limit, ignoring Retry-After; Cairn keeps retries in `connectors.retrying`.
"""

from urllib.parse import quote

from pydantic import ValidationError

from connectors.json_api import JsonApi
from connectors.pagerduty import enrich
from connectors.pagerduty.models import PdIncident
from connectors.pagerduty.webhook import to_incident
from connectors.retrying import RetryPolicy
from core.errors import PayloadError, describe_validation_error
from core.incident import Incident

DEFAULT_URL = "https://api.pagerduty.com"


class PagerDutyClient(JsonApi):
    """Reads incidents; every failure is a Cairn error (TransientError once retries run out)."""

    vendor = "PagerDuty"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_URL,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        headers = {
            "Authorization": f"Token token={token}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        }
        super().__init__(base_url, headers, policy=policy, timeout=timeout)

    def incident(self, incident_id: str) -> Incident | None:
        """`GET /incidents/{id}` as a canonical incident (None for a status Cairn ignores)."""
        data = self.get(f"/incidents/{quote(incident_id, safe='')}", "incident")
        try:
            found = PdIncident.model_validate(data.get("incident"))
            return to_incident(found, resolved_at=found.resolved_at)
        except ValidationError as exc:
            raise PayloadError(f"PagerDuty incident: {describe_validation_error(exc)}") from exc

    def notes(self, incident_id: str) -> list[str]:
        """`GET /incidents/{id}/notes`: the notes' text, oldest first."""
        data = self.get(f"/incidents/{quote(incident_id, safe='')}/notes", "incident notes")
        notes = data.get("notes")
        if not isinstance(notes, list):
            raise PayloadError("PagerDuty incident notes: no `notes` list in the answer")
        return [
            n["content"] for n in notes if isinstance(n, dict) and isinstance(n.get("content"), str)
        ]

    def custom_fields(self, incident_id: str) -> dict[str, object]:
        """`GET /incidents/{id}/custom_fields/values`: field name → value."""
        path = f"/incidents/{quote(incident_id, safe='')}/custom_fields/values"
        data = self.get(path, "incident custom fields")
        found = data.get("custom_fields")
        if not isinstance(found, list):
            raise PayloadError("PagerDuty custom fields: no `custom_fields` list in the answer")
        return {
            f["name"]: f.get("value")
            for f in found
            if isinstance(f, dict) and isinstance(f.get("name"), str)
        }

    def enrich(self, incident: Incident) -> Incident:
        """The incident with the findings of its notes and custom fields merged in."""
        notes = enrich.read_notes(self.notes(incident.external_id))
        custom = enrich.read_custom_fields(self.custom_fields(incident.external_id))
        return enrich.merge(enrich.merge(incident, notes), custom)
