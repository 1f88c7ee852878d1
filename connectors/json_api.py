"""A read-only JSON API client over httpx with the shared retries, for the trackers' REST APIs."""

from typing import Any, Self

import httpx

from connectors.retrying import RetryPolicy, send
from core.errors import PayloadError


class JsonApi:
    """GETs JSON objects; every failure is a Cairn error (TransientError once retries run out).

    Subclasses name the vendor (for error messages) and the credential (masked in the repr).
    """

    vendor = "the API"
    credential = "token"

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._policy = policy or RetryPolicy()
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, headers=headers)

    def __repr__(self) -> str:
        base = str(self._http.base_url)
        return f"{type(self).__name__}(base_url={base!r}, {self.credential}=***)"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def get(self, path: str, what: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """`GET path` as a JSON object; `what` names the call in errors."""
        what = f"{self.vendor} {what}"
        request = self._http.build_request("GET", path, params=params)
        response = send(self._http, request, self._policy, what=what)
        try:
            data = response.json()
        except ValueError as exc:
            raise PayloadError(f"{what}: the answer is not JSON") from exc
        if not isinstance(data, dict):
            raise PayloadError(f"{what}: the answer is not a JSON object")
        return data
