"""incident.io API subset: re-fetch an incident (and its follow-ups) when a webhook is thin."""

from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from connectors.incidentio.mapping import combine, to_incident
from connectors.incidentio.models import FollowUp, IoIncident
from connectors.retrying import RetryPolicy, send
from core.errors import PayloadError, describe_validation_error
from core.incident import Incident

DEFAULT_URL = "https://api.incident.io"


class IncidentIoClient:
    """Reads incidents; every failure is a Cairn error (TransientError once retries run out)."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_URL,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._policy = policy or RetryPolicy()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"IncidentIoClient(base_url={str(self._http.base_url)!r}, api_key=***)"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def incident(self, incident_id: str) -> Incident | None:
        """`GET /v2/incidents/{id}` plus its follow-ups as action items (None: declined etc.)."""
        data = self._get(f"/v2/incidents/{quote(incident_id, safe='')}", {}, "incident")
        follow_ups = self._get("/v2/follow_ups", {"incident_id": incident_id}, "follow-ups")
        try:
            incident = IoIncident.model_validate(data.get("incident"))
            items = [FollowUp.model_validate(f) for f in follow_ups.get("follow_ups") or []]
            return to_incident(incident, items)
        except ValidationError as exc:
            raise PayloadError(f"incident.io incident: {describe_validation_error(exc)}") from exc

    def enrich(self, incident: Incident) -> Incident:
        """The incident as incident.io holds it now, keeping a finished postmortem's status."""
        fetched = self.incident(incident.external_id)
        return incident if fetched is None else combine(fetched, incident)

    def _get(self, path: str, params: dict[str, str], what: str) -> dict[str, Any]:
        request = self._http.build_request("GET", path, params=params)
        response = send(self._http, request, self._policy, what=f"incident.io {what}")
        try:
            data = response.json()
        except ValueError as exc:
            raise PayloadError(f"incident.io {what}: the answer is not JSON") from exc
        if not isinstance(data, dict):
            raise PayloadError(f"incident.io {what}: the answer is not a JSON object")
        return data
