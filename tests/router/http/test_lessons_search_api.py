"""Search, export and import through `/api/v1/lessons`: pages with facets, clear 4xx answers,
all-or-nothing imports that say when nothing changed."""

from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

from tests.router.support import publish_examples, serving


@pytest.fixture
def client(database_url: str, webhook_secret: str) -> Iterator[TestClient]:
    with serving(database_url, webhook_secret, prepare=publish_examples) as (test_client, _db):
        yield test_client


def test_search_pages_with_facets(client: TestClient) -> None:
    page = client.get("/api/v1/lessons", params={"q": "pool connection"}).json()
    assert [hit["id"] for hit in page["hits"]] == ["derive-pool-size"]
    assert page["hits"][0]["score"] > 0
    assert (page["total"], page["next_offset"]) == (1, None)
    assert page["facets"]["status"] == {"published": 1}
    assert page["facets"]["service"] == {"ledger-api": 1, "payments-api": 1}
    browse = client.get("/api/v1/lessons", params={"limit": 1}).json()
    assert ([h["id"] for h in browse["hits"]], browse["next_offset"]) == (["cache-bust-css"], 1)
    assert browse["facets"]["tag"] == {
        "connection-pool": 1,
        "database": 1,
        "deploy": 1,
        "frontend": 1,
    }
    filtered = client.get(
        "/api/v1/lessons", params=[("tag", "frontend"), ("tag", "database"), ("owner", "platform")]
    ).json()
    assert [h["id"] for h in filtered["hits"]] == ["derive-pool-size"]
    assert client.get("/api/v1/lessons", params={"q": '"AND( NEAR'}).json()["total"] == 0
    listed = client.get("/api/v1/lessons", params={"status": "published"}).json()
    assert [lesson["id"] for lesson in listed] == ["cache-bust-css", "derive-pool-size"]


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"q": "x" * 501}, "q"),
        ({"q": " ".join(f"w{n}" for n in range(40))}, "more than 32 terms"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"mandate": "maybe"}, "mandate"),
        ([("status", "draft"), ("status", "published")], "give one status"),
    ],
)
def test_bad_search_requests_are_422(client: TestClient, params: object, where: str) -> None:
    response = client.get("/api/v1/lessons", params=params)  # type: ignore[arg-type]
    assert response.status_code == 422
    assert where in response.text


def test_export_and_import_over_http(client: TestClient) -> None:
    exported = client.get("/api/v1/lessons/export", params={"format": "yaml"})
    assert exported.headers["content-type"].startswith("application/yaml")
    document = yaml.safe_load(exported.text)
    assert [e["id"] for e in document["lessons"]] == ["cache-bust-css", "derive-pool-size"]
    yaml_type = {"content-type": "application/yaml"}
    again = client.post("/api/v1/lessons/import", content=exported.text, headers=yaml_type)
    assert again.json()["changed"] is False
    assert again.json()["summary"] == "nothing changed: all 2 entries are already here"

    new = {**document["lessons"][1], "id": "pool-size-copy", "status": "draft", "review": None}
    body = {"format": "cairn.lessons/1", "lessons": [new]}
    dry = client.post("/api/v1/lessons/import", params={"dry_run": True}, json=body).json()
    assert (dry["dry_run"], dry["created"]) == (True, ["pool-size-copy@1"])
    assert client.get("/api/v1/lessons/pool-size-copy").status_code == 404
    done = client.post("/api/v1/lessons/import", json=body)
    assert done.json()["created"] == ["pool-size-copy@1"]
    assert client.get("/api/v1/lessons/pool-size-copy").status_code == 200

    stale = {**document["lessons"][1], "title": "Changed elsewhere"}
    conflict = client.post("/api/v1/lessons/import", json=[stale])
    assert conflict.status_code == 409
    assert "derive-pool-size@1 (published): this database has" in conflict.json()["reason"]
    invalid = client.post("/api/v1/lessons/import", json=[{**new, "id": "x", "version": 0}])
    assert invalid.status_code == 422
    assert invalid.json()["errors"] == [
        "body: entry 0 (id 'x'): version: Input should be greater than or equal to 1"
    ]
    broken = client.post("/api/v1/lessons/import", content=b"lessons: [", headers=yaml_type)
    assert broken.status_code == 422 and "invalid YAML" in broken.json()["reason"]
    assert client.get("/api/v1/lessons/schema").json()["$defs"]["Lesson"]["title"] == "Lesson"


def test_search_is_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    parameters = {p["name"] for p in paths["/api/v1/lessons"]["get"]["parameters"]}
    assert {"q", "status", "tag", "service", "mandate", "owner", "limit", "offset"} <= parameters
    assert {"/api/v1/lessons/export", "/api/v1/lessons/import"} <= set(paths)
    assert "/api/v1/lessons/{lesson_id}/recurrences" in paths
