"""`cairn docs asyncapi`: the broker's queues, one per pipeline topic, in a well-formed document."""

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from router.asyncapi import OutboxReference
from router.cli.main import main
from router.pipeline import Dispatcher
from router.ruleset.active import ActiveRules
from router.stages import build_stages
from store.engine import Database


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return _resolve(doc, node["$ref"]) if isinstance(node.get("$ref"), str) else node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _topics() -> list[str]:
    db = Database("sqlite://")
    try:
        return Dispatcher(db, build_stages(ActiveRules(None))).topics
    finally:
        db.dispose()


def test_the_document_names_every_topic_queue_and_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_BROKER_URL", "amqp://cairn:hunter2-secret@rabbit.internal:5672/")
    monkeypatch.setenv("CAIRN_BROKER_PREFIX", "acme")
    output = tmp_path / "asyncapi.json"
    result = CliRunner().invoke(main, ["docs", "asyncapi", "--output", str(output)])
    assert result.exit_code == 0, result.output
    text = output.read_text()
    assert "hunter2-secret" not in text
    doc = json.loads(text)

    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"]["development"]["host"] == "rabbit.internal:5672"
    for ref in _refs(doc):  # every reference resolves inside the document
        _resolve(doc, ref)
    queues = {
        channel["bindings"]["amqp"]["queue"]["name"]: channel["address"]
        for channel in doc["channels"].values()
    }
    assert queues == {f"acme.{topic}": topic for topic in _topics()}
    for operation in doc["operations"].values():
        assert operation["action"] == "receive"
        assert _resolve(doc, operation["channel"]["$ref"])["address"] in queues.values()
        for message_ref in operation["messages"]:
            message = _resolve(doc, message_ref["$ref"])
            payload = _resolve(doc, message["payload"]["$ref"])
            Draft202012Validator.check_schema(payload)
            validator = Draft202012Validator(payload)
            assert validator.is_valid({"id": 7})
            assert not validator.is_valid({"ref": "github:acme/api#1"})
            assert message["headers"]["properties"]["x-cairn-attempt"]["type"] == "integer"
    assert OutboxReference(id=7).model_dump() == {"id": 7}


def test_asyncapi_2_6_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAIRN_BROKER_URL", raising=False)
    result = CliRunner().invoke(main, ["docs", "asyncapi", "--schema-version", "2.6.0"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["asyncapi"] == "2.6.0"
    assert len(doc["channels"]) == len(_topics())
