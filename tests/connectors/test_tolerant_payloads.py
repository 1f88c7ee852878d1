"""Vendor payloads are read tolerantly: every field of a recorded delivery is removed, then
garbled, one at a time. Without a field Cairn can do without, the delivery is still accepted and
still yields its incident or work item; without one it needs, it is a 400 naming the field.

The table is generated from the fixtures, so a field a vendor adds to a recorded payload is
covered the day the fixture is refreshed.
"""

import copy
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.base import InboundEvent
from connectors.canvas import jwt as canvas_jwt
from connectors.generic import webhook as generic
from connectors.github import webhook as github
from connectors.incidentio import webhook as incidentio
from connectors.jira import webhook as jira
from connectors.opsgenie import webhook as opsgenie
from connectors.pagerduty import webhook as pagerduty
from core.errors import PayloadError, UnsupportedEventError
from core.events import IncidentEvent, WorkItemEvent
from tests.router.http.hooks_support import SIGNERS, canvas_token, hook_app

ROOT = Path(pagerduty.__file__).parent.parent
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    """A recorded delivery and what of it Cairn needs (dotted paths; a list entry is `0`)."""

    fixture: str
    parse: Callable[[bytes], list[Any]]
    produces: type[Any]
    required: frozenset[str]
    """Needed: removed or garbled, the delivery is a 400 naming it."""
    valued: frozenset[str] = frozenset()
    """May be absent (Cairn falls back on another field) but not garbled."""
    selectors: frozenset[str] = frozenset()
    """Say what kind of event this is: without them it is a kind Cairn acknowledges and ignores."""
    strict_values: bool = False
    """Cairn's own canonical format: its values are checked strictly, only absences tolerated."""


def _hook(parse: Callable[[dict[str, str], bytes], list[InboundEvent]]) -> Callable[..., Any]:
    return lambda body: parse({"X-GitHub-Event": "pull_request"}, body)


def _canvas(body: bytes) -> list[canvas_jwt.LiveEvent]:
    try:
        return [canvas_jwt.parse_event(json.loads(body))]
    except UnsupportedEventError:
        return []


COURSE_COMPLETED = "canvas/fixtures/live_event_course_completed.json"
SUBMISSION_CREATED = "canvas/fixtures/live_event_submission_created.json"
SOURCES = {
    "pagerduty": Source(
        "pagerduty/fixtures/incident_resolved.json",
        _hook(pagerduty.parse),
        IncidentEvent,
        frozenset({"event.event_type", "event.data", "event.data.id", "event.data.status"}),
    ),
    "incidentio": Source(
        "incidentio/fixtures/incident_status_updated_closed.json",
        _hook(incidentio.parse),
        IncidentEvent,
        frozenset(
            {
                "event_type",
                "public_incident.incident_status_updated_v2.incident.id",
                "public_incident.incident_status_updated_v2.incident.incident_status.category",
            }
        ),
    ),
    "opsgenie": Source(
        "opsgenie/fixtures/alert_closed.json",
        _hook(opsgenie.parse),
        IncidentEvent,
        frozenset({"action", "alert.alertId"}),
    ),
    "github": Source(
        "github/fixtures/pull_request__opened.json",
        _hook(github.parse),
        WorkItemEvent,
        frozenset({"pull_request.number", "repository.full_name"}),
        selectors=frozenset({"action"}),
    ),
    "jira": Source(
        "jira/fixtures/issue_created.json",
        _hook(jira.parse),
        WorkItemEvent,
        frozenset({"webhookEvent", "issue.key"}),
    ),
    "generic": Source(
        "generic/fixtures/incident_resolved.json",
        _hook(generic.parse),
        IncidentEvent,
        frozenset(
            {"type", "incident.source", "incident.external_id", "incident.title", "incident.status"}
        ),
        strict_values=True,
    ),
    "canvas-course": Source(
        COURSE_COMPLETED,
        _canvas,
        canvas_jwt.LiveEvent,
        frozenset({"metadata", "body", "body.user", "body.user.id"}),
        valued=frozenset({"body.course.id"}),
        selectors=frozenset({"metadata.event_name"}),
    ),
    "canvas-submission": Source(
        SUBMISSION_CREATED,
        _canvas,
        canvas_jwt.LiveEvent,
        frozenset({"metadata", "body", "body.user_id", "body.assignment_id"}),
        valued=frozenset({"metadata.context_id"}),
        selectors=frozenset({"metadata.event_name"}),
    ),
}
HTTP_DEPTH = 3
"""Mutations this close to the top go through ingress too; deeper ones through the parser only
(ingress runs the same parser, so this only bounds the run time)."""


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every object member, and the first entry of every list, depth first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list) and value:
        yield (*prefix, 0)
        yield from paths(value[0], (*prefix, 0))


def odd(value: Any) -> Any:
    """A value of another JSON kind than `value`."""
    if isinstance(value, str):
        return {"odd": [1]}
    if isinstance(value, dict):
        return ["odd"]
    return "odd"


def mutated(document: Any, path: Path_, how: str) -> Any:
    """`document` with the member at `path` removed (`remove`) or replaced by `odd` (`garble`)."""
    changed = copy.deepcopy(document)
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "remove":
        del parent[last]
    else:
        parent[last] = odd(parent[last])
    return changed


def dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


def needed(path: Path_, required: frozenset[str]) -> bool:
    """True when the member at `path` is, or holds, a field Cairn needs."""
    name = dotted(path)
    return any(r == name or r.startswith(name + ".") for r in required)


def cases() -> Iterator[Any]:
    for source, spec in SOURCES.items():
        document = json.loads((ROOT / spec.fixture).read_bytes())
        for path in paths(document):
            for how in ("remove", "garble"):
                if how == "remove" and isinstance(path[-1], int):
                    continue  # a shorter list is still a list
                yield pytest.param(source, path, how, id=f"{source}-{how}-{dotted(path)}")


def expected(spec: Source, path: Path_, how: str) -> str:
    """`refused`, `ignored` (2xx, nothing produced) or `produced`."""
    if needed(path, spec.required):
        return "refused"
    if how == "garble" and (spec.strict_values or dotted(path) in spec.valued):
        return "refused"
    if needed(path, spec.selectors):
        return "ignored"
    return "produced"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with hook_app(tmp_path_factory.mktemp("tolerant")) as (test_client, _db):
        yield test_client


def deliver(client: TestClient, source: str, body: bytes, case: str) -> Any:
    if source.startswith("canvas"):
        jwt = canvas_token(json.loads(body))
        return client.post(
            "/hooks/canvas", content=jwt, headers={"Content-Type": "application/jwt"}
        )
    return client.post(f"/hooks/{source}", content=body, headers=SIGNERS[source](body, case))


@pytest.mark.parametrize(("source", "path", "how"), list(cases()))
def test_each_field_removed_or_garbled(
    client: TestClient, source: str, path: Path_, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = SOURCES[source]
    document = mutated(json.loads((ROOT / spec.fixture).read_bytes()), path, how)
    body = json.dumps(document).encode()
    outcome = expected(spec, path, how)
    with caplog.at_level(logging.INFO, logger="cairn.connectors.payloads"):
        if outcome == "refused":
            with pytest.raises(PayloadError):
                spec.parse(body)
        else:
            found = spec.parse(body)
            kinds = [type(e) for e in found][:1]
            assert kinds == ([] if outcome == "ignored" else [spec.produces]), found
    # What was defaulted is logged by model and field, never with the value.
    assert "odd" not in caplog.text
    if len(path) > HTTP_DEPTH:
        return
    answer = deliver(client, source, body, f"{source}-{how}-{dotted(path)}")
    if outcome == "refused":
        assert answer.status_code == 400, answer.text
        named = [p for p in path if isinstance(p, str)][-1]
        reason = answer.json()["reason"]
        assert named in reason or named.replace("_", " ") in reason, reason
    else:
        assert answer.status_code in (200, 202), answer.text


def test_pagerduty_priority_without_id_still_resolves_the_incident() -> None:
    """The case that was refused: PagerDuty would retry it, then disable the subscription."""
    document = json.loads((ROOT / SOURCES["pagerduty"].fixture).read_bytes())
    document["event"]["data"]["priority"] = {"summary": "P1", "type": "priority_reference"}
    [event] = pagerduty.parse({}, json.dumps(document).encode())
    assert isinstance(event, IncidentEvent)
    assert event.incident.status.value == "resolved"
    assert event.incident.severity.value == "critical"


def test_a_garbled_field_is_logged_by_name_without_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    document = json.loads((ROOT / SOURCES["opsgenie"].fixture).read_bytes())
    document["alert"]["createdAt"] = "secret-looking-value"
    document["alert"]["tags"] = ["kept", {"no": 1}]
    with caplog.at_level(logging.INFO, logger="cairn.connectors.payloads"):
        [event] = opsgenie.parse({}, json.dumps(document).encode())
    assert isinstance(event, IncidentEvent)
    assert event.incident.tags == ("kept",)
    assert "Alert.createdAt" in caplog.text and "Alert.tags" in caplog.text
    assert "secret-looking-value" not in caplog.text
