"""A contract fake of the incident.io API subset the client uses, keeping state in memory."""

from typing import Any

from connectors.fake_http import FakeServer, Reply, ServedFake


class FakeIncidentIo(ServedFake):
    """Incidents and follow-ups; `server.fail(...)` scripts errors."""

    def __init__(self, api_key: str) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.follow_ups: list[dict[str, Any]] = []
        self.server = FakeServer(auth=f"Bearer {api_key}")
        self.server.route("GET", "/v2/incidents/{id}", self._incident)
        self.server.route("GET", "/v2/follow_ups", self._follow_ups)

    def add_incident(self, incident: dict[str, Any]) -> None:
        """Store an IncidentV2 object."""
        self.incidents[incident["id"]] = incident

    def add_follow_up(self, incident_id: str, title: str) -> None:
        """Add a follow-up to an incident."""
        number = len(self.follow_ups) + 1
        self.follow_ups.append(
            {"id": f"01FOLLOWUP{number:016d}", "incident_id": incident_id, "title": title}
        )

    def _incident(self, params: dict[str, str], query: Any, body: Any) -> Reply:
        found = self.incidents.get(params["id"])
        if found is None:
            return 404, {"type": "not_found", "status": 404, "errors": [{"code": "not_found"}]}
        return 200, {"incident": found}

    def _follow_ups(self, params: dict[str, str], query: dict[str, list[str]], body: Any) -> Reply:
        wanted = query.get("incident_id", [None])[0]
        found = [f for f in self.follow_ups if wanted is None or f["incident_id"] == wanted]
        return 200, {"follow_ups": found}
