"""The generic source's field mapping: loading with file:line errors, applying, and over HTTP."""

import json
from pathlib import Path

import pytest

from connectors.generic import mapping
from connectors.generic.webhook import GenericVerifier, parse, sign
from core.errors import ConfigurationError, PayloadError
from tests.connectors.incident_support import draft_ids, incidents_of
from tests.router.support import drain, serving

MAPPING = """\
source: statuspal
match:
  event: incident.updated
fields:
  external_id: incident.id
  title: incident.name
  status: incident.state
  severity: incident.impact
  services: incident.components[*].name
  teams: incident.owner
  started_at: incident.timeline[0].at
  url: incident.links.page
  summary: incident.notes
values:
  status: {investigating: triggered, fixing: acknowledged, done: resolved, planned: null}
  severity: {major: high, minor: low}
"""
DELIVERY = {
    "event": "incident.updated",
    "incident": {
        "id": 7731,
        "name": "Checkout\tslow",
        "state": "done",
        "impact": "major",
        "components": [{"name": "checkout"}, {"name": "cart"}, {"name": "checkout"}],
        "owner": "shop",
        "timeline": [{"at": "2026-11-20T09:12:00Z"}, {"at": "2026-11-20T10:00:00Z"}],
        "links": {"page": "https://status.example.com/i/7731"},
        "notes": "A cache stampede after a deploy.",
    },
}


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def _with(**changes: object) -> dict[str, object]:
    return {**DELIVERY, "incident": {**DELIVERY["incident"], **changes}}  # type: ignore[dict-item]


def test_apply_maps_every_field(mapping_file: Path) -> None:
    incident = mapping.apply(mapping.load(mapping_file), DELIVERY)
    assert incident is not None
    assert incident.model_dump(mode="json", exclude_defaults=True) == {
        "source": "statuspal",
        "external_id": "7731",
        "title": "Checkout slow",
        "status": "resolved",
        "severity": "high",
        "services": ["checkout", "cart"],
        "teams": ["shop"],
        "started_at": "2026-11-20T09:12:00Z",
        "url": "https://status.example.com/i/7731",
        "summary": "A cache stampede after a deploy.",
    }


@pytest.mark.parametrize(
    "delivery",
    [
        pytest.param({**DELIVERY, "event": "incident.deleted"}, id="no-match"),
        pytest.param(_with(state="planned"), id="status-mapped-to-null"),
        pytest.param(_with(state="exploded"), id="unknown-status"),
        pytest.param(_with(state=None), id="no-status"),
    ],
)
def test_ignored_deliveries(mapping_file: Path, delivery: object) -> None:
    assert mapping.apply(mapping.load(mapping_file), delivery) is None


def test_unmapped_values_pass_through_and_unknown_severity_is_medium(mapping_file: Path) -> None:
    incident = mapping.apply(mapping.load(mapping_file), _with(state="resolved", impact="odd"))
    assert incident is not None
    assert (incident.status.value, incident.severity.value) == ("resolved", "medium")


def test_missing_id_is_a_payload_error(mapping_file: Path) -> None:
    with pytest.raises(PayloadError, match=r"incident\.id"):
        mapping.apply(mapping.load(mapping_file), _with(id=None))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("source: x\nfields:\n  colour: a.b\n", ":3: 'colour' is not an Incident field"),
        ("source: x\nfields:\n  title: a..b\n", ":3: fields.title: not a JSON path"),
        ("fields: {}\n", ":1: `source`"),
        ("source: x\nfields:\n  title: a\n", "fields.external_id is required"),
        ("source: x\nextra: 1\n", ":2: unknown key 'extra'"),
        (
            "source: x\nfields: {external_id: a, title: b, status: c}\n"
            "values:\n  status:\n    up: exploded\n",
            ":5: 'exploded' is not one of",
        ),
        ("source: x\nvalues:\n  teams: {a: b}\n", ":3: values.teams: only status"),
        ("source: [unclosed\n", ":2: not valid YAML"),
        ("", "the mapping file is empty"),
    ],
)
def test_loader_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as info:
        mapping.load(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("path", "steps"),
    [("a", ("a",)), ("a.b[0]", ("a", "b", 0)), ("a[*].name", ("a", None, "name"))],
)
def test_parse_path(path: str, steps: tuple[object, ...]) -> None:
    assert mapping.parse_path(path) == steps


def test_generic_parser_uses_the_mapping_only_for_non_canonical_bodies(
    mapping_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_GENERIC_MAPPING", str(mapping_file))
    [incident] = incidents_of(parse({}, json.dumps(DELIVERY).encode()))
    assert incident["external_id"] == "7731"
    with pytest.raises(PayloadError, match="incident"):
        parse({}, b'{"type": "incident"}')


def test_a_broken_mapping_stops_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook_secret: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("source: x\n")
    monkeypatch.setenv("CAIRN_GENERIC_MAPPING", str(path))
    with pytest.raises(ConfigurationError, match=r"broken\.yaml"):
        GenericVerifier(webhook_secret)


def test_mapped_resolved_incident_becomes_one_draft(
    database_url: str, webhook_secret: str, mapping_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_GENERIC_MAPPING", str(mapping_file))
    body = json.dumps(DELIVERY).encode()
    with serving(database_url, webhook_secret, generic_mapping=mapping_file) as (client, db):
        answer = client.post(
            "/hooks/generic", content=body, headers=sign(webhook_secret, "m1", body)
        )
        assert answer.status_code == 202, answer.text
        drain(db)
        assert draft_ids(db) == ["from-statuspal-7731"]
