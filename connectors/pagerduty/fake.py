"""A contract fake of the PagerDuty REST API subset the client uses, keeping state in memory."""

from itertools import count
from typing import Any

from connectors.fake_http import FakeServer, Reply, ServedFake


class FakePagerDuty(ServedFake):
    """Incidents, notes and custom field values; `server.fail(...)` scripts errors."""

    def __init__(self, token: str) -> None:
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.custom_fields: dict[str, list[dict[str, Any]]] = {}
        self._ids = count(1)
        self.server = FakeServer(auth=f"Token token={token}")
        self.server.route("GET", "/incidents/{id}", self._incident)
        self.server.route("GET", "/incidents/{id}/notes", self._notes)
        self.server.route("POST", "/incidents/{id}/notes", self._add_note)
        self.server.route("GET", "/incidents/{id}/custom_fields/values", self._custom_fields)

    def add_incident(self, incident: dict[str, Any]) -> None:
        """Store an incident object (the shape of webhook `event.data`)."""
        self.incidents[incident["id"]] = incident

    def add_note(self, incident_id: str, content: str) -> None:
        """Append a note to an incident."""
        self.notes.setdefault(incident_id, []).append(
            {
                "id": f"PN{next(self._ids):05d}",
                "content": content,
                "created_at": "2026-11-21T00:00:00Z",
            }
        )

    def set_custom_field(self, incident_id: str, name: str, value: object) -> None:
        """Set one custom field value on an incident."""
        values = [f for f in self.custom_fields.get(incident_id, []) if f["name"] != name]
        values.append({"name": name, "display_name": name, "value": value, "type": "field_value"})
        self.custom_fields[incident_id] = values

    def _known(self, params: dict[str, str]) -> Reply | None:
        if params["id"] not in self.incidents:
            return 404, {"error": {"message": "Not Found", "code": 2100}}
        return None

    def _incident(self, params: dict[str, str], query: Any, body: Any) -> Reply:
        return self._known(params) or (200, {"incident": self.incidents[params["id"]]})

    def _notes(self, params: dict[str, str], query: Any, body: Any) -> Reply:
        return self._known(params) or (200, {"notes": self.notes.get(params["id"], [])})

    def _add_note(self, params: dict[str, str], query: Any, body: Any) -> Reply:
        missing = self._known(params)
        content = (body or {}).get("note", {}).get("content")
        if missing is not None or not isinstance(content, str):
            return missing or (400, {"error": {"message": "Invalid Input Provided"}})
        self.add_note(params["id"], content)
        return 201, {"note": self.notes[params["id"]][-1]}

    def _custom_fields(self, params: dict[str, str], query: Any, body: Any) -> Reply:
        found = self.custom_fields.get(params["id"], [])
        return self._known(params) or (200, {"custom_fields": found})
