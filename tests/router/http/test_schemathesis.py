"""schemathesis against the app's own OpenAPI document, on the embedded SQLite default.

Every operation is called with requests generated from its declared parameters and body, valid
and invalid ones (schemathesis's positive and negative generation), once per identity (no
token, then a token for each role); no answer may be a 5xx, and every answer must fit the
status codes, content types and schemas the document declares. Bounded: `EXAMPLES` requests per
operation, so the file runs in well under a minute on two cores.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as generic_checks
from schemathesis.specs.openapi import checks as openapi_checks

from core.access import Role
from router.compose import build_runtime
from router.http.app import create_app
from store import migrate
from store.engine import Database
from tests.router.http.hooks_support import hook_settings
from tests.router.support import DRAFT, bearer

EXAMPLES = 20
CHECKS = [
    generic_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]
IDENTITIES: dict[str, dict[str, str]] = {}
"""`none` and each role → the headers that make a request come from it (filled by the app)."""


CLIENT: list[TestClient] = []
"""The client of the running app (its lifespan, and so its event loop, stays up)."""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory: Path = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{directory / 'cairn.db'}"
    db = Database(url)
    migrate.upgrade(db)
    IDENTITIES["none"] = {}
    for role in Role:
        teams = ("payments",) if role == Role.OWNER else ()
        IDENTITIES[role.value] = bearer(db, f"fuzz-{role.value}", role.value, *teams)
    application = create_app(build_runtime(hook_settings(url, auth_failures_per_minute=1_000_000)))
    with TestClient(application) as client:
        created = client.post(
            "/api/v1/lessons", json={**DRAFT, "owner": "payments"}, headers=IDENTITIES["owner"]
        )
        assert created.status_code == 201, created.text
        CLIENT.append(client)
        yield application
        CLIENT.clear()
    db.dispose()


def _document() -> dict[str, Any]:
    """The OpenAPI document (it depends on no setting, so an app that never starts gives it)."""
    with tempfile.TemporaryDirectory() as directory:
        application = create_app(build_runtime(hook_settings(f"sqlite:///{directory}/doc.db")))
        document: dict[str, Any] = application.openapi()
    return document


schema = schemathesis.openapi.from_dict(_document())


def send(case: Any, headers: dict[str, str]) -> Any:
    """The case sent through the running app's client."""
    request = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    body = request.pop("data", None)
    if body is not None:
        request["content"] = body if isinstance(body, bytes | str) else str(body)
    request.pop("auth", None)
    return CLIENT[0].request(**request)


OPERATIONS = [result.ok() for result in schema.get_all_operations()]
"""Every operation of the document, each its own test (its own node id, so the suite's
parallel workers schedule each one, where one shared id would let them run just one)."""


@pytest.mark.parametrize("operation", OPERATIONS, ids=[o.label for o in OPERATIONS])
@pytest.mark.usefixtures("app")
def test_every_operation_for_every_identity(operation: Any) -> None:
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)  # valid, and invalid, requests

    @given(case=st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes)))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def every_identity(case: Any) -> None:
        for identity, headers in IDENTITIES.items():
            response = send(case, headers)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:
                raise AssertionError(f"as {identity}: {exc}") from exc

    every_identity()


def test_the_document_declares_bodies_and_answers(app: Any) -> None:
    """Every operation that takes a body declares it, and every JSON answer has a schema."""
    document = TestClient(app).get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            if method in {"post", "put", "patch"} and not path.endswith(
                (
                    "/submit",
                    "/publish",
                    "/revise",
                    "/retire",
                    "/evaluate",
                    "/clear",
                    "/redact",
                    "/keep",
                    "/retry-dead",
                )
            ):
                assert "requestBody" in operation, where
            for status, answer in operation["responses"].items():
                for media, content in answer.get("content", {}).items():
                    if media == "application/json":
                        assert content.get("schema"), f"{where} {status}"
                        assert content["schema"] != {}, f"{where} {status}"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/rules/validate"),
        ("PUT", "/api/v1/teams/payments"),
        ("POST", "/api/v1/teams/import"),
        ("PATCH", "/api/v1/lessons/derive-pool-size"),
    ],
)
@pytest.mark.usefixtures("app")
def test_a_body_that_is_not_json_is_a_400_in_the_refusal_shape(method: str, path: str) -> None:
    """Found by schemathesis: FastAPI answered `{"detail": …}` outside the declared shape."""
    headers = {**IDENTITIES["admin"], "Content-Type": "application/json"}
    answer = CLIENT[0].request(method, path, content=b"\xff\xfe{not json", headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {
        "status": "rejected",
        "reason": "the body could not be read as the content type it declares",
    }


@pytest.mark.usefixtures("app")
def test_an_unknown_path_is_a_404_in_the_refusal_shape() -> None:
    answer = CLIENT[0].get("/api/v1/nothing-here", headers=IDENTITIES["admin"])
    assert answer.status_code == 404
    assert answer.json()["status"] == "rejected" and answer.json()["reason"]


@pytest.mark.usefixtures("app")
def test_rule_text_yaml_cannot_read_is_a_problem_not_a_500() -> None:
    """Found by schemathesis: a control character in a draft pack raised past the route."""
    files = {"files": {"packs/a.yaml": "\x1f"}}
    answer = CLIENT[0].post("/api/v1/rules/validate", json=files, headers=IDENTITIES["platform"])
    assert answer.status_code == 200
    assert answer.json()["ok"] is False
    assert "not readable as YAML" in answer.json()["errors"][0]
