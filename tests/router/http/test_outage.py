"""When the database goes away, ingress answers 503 with Retry-After and readiness fails."""

from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from connectors import generic
from connectors.generic.webhook import sign
from tests.conftest import POSTGRES_URL
from tests.router.support import serving

FIXTURE = Path(generic.__file__).parent / "fixtures" / "incident_resolved.json"


def test_database_outage_is_a_503_not_a_crash(postgres_url: str, webhook_secret: str) -> None:
    body = FIXTURE.read_bytes()
    with serving(postgres_url, webhook_secret) as (client, _db):
        assert client.get("/readyz").status_code == 200
        name = urlsplit(postgres_url).path.lstrip("/")
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

        response = client.post(
            "/hooks/generic", content=body, headers=sign(webhook_secret, "m1", body)
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.json()["reason"] == "storage unavailable; retry later"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("database unreachable")
