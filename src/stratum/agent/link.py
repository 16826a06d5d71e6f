"""The agent's connection to the server: every call is one the agent opens (NAT-friendly),
over TLS when the server has a certificate (`--ca` names the authority to trust)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from stratum.backends.agent.protocol import (
    DesiredRun,
    JoinAnswer,
    JoinRequest,
    NodeReport,
    ReportAnswer,
)


class Refused(Exception):
    """The server answered and said no (4xx): retrying the same call will not help."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Gone(Exception):
    """The watch fell behind the server's history (410): list again."""


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text[:500]


class Link:
    def __init__(self, server: str, *, ca: Path | None = None, timeout: float = 10.0) -> None:
        self.server = server.rstrip("/")
        verify: Any = True
        if ca is not None:
            import ssl

            verify = ssl.create_default_context(cafile=str(ca))
        self._http = httpx.Client(base_url=self.server, verify=verify, timeout=timeout)
        self.token: str | None = None

    def close(self) -> None:
        self._http.close()

    def _headers(self, token: str | None = None) -> dict[str, str]:
        value = token or self.token
        return {"Authorization": f"Bearer {value}"} if value else {}

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise Refused(response.status_code, _message(response))
        return response

    def join(self, bootstrap: str, request: JoinRequest) -> JoinAnswer:
        response = self._http.post(
            "/agent/v1/join",
            content=request.model_dump_json(by_alias=True, exclude_none=True),
            headers={**self._headers(bootstrap), "Content-Type": "application/json"},
        )
        return JoinAnswer.model_validate(self._check(response).json())

    def report(self, report: NodeReport) -> ReportAnswer:
        response = self._http.post(
            f"/agent/v1/nodes/{report.node}/reports",
            content=report.model_dump_json(by_alias=True, exclude_none=True),
            headers={**self._headers(), "Content-Type": "application/json"},
        )
        return ReportAnswer.model_validate(self._check(response).json())

    def desired(self, node: str) -> tuple[list[DesiredRun], str]:
        response = self._check(
            self._http.get(f"/agent/v1/nodes/{node}/runs", headers=self._headers())
        )
        data = response.json()
        return [DesiredRun.model_validate(i) for i in data["items"]], str(data["resourceVersion"])

    def watch(
        self, node: str, resource_version: str, *, read_timeout: float
    ) -> Iterator[tuple[str, DesiredRun | None, str | None]]:
        """(event type, desired run or None, resourceVersion of a bookmark) as they come."""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        with self._http.stream(
            "GET",
            f"/agent/v1/nodes/{node}/runs",
            params={"watch": "true", "resourceVersion": resource_version},
            headers=self._headers(),
            timeout=timeout,
        ) as response:
            if response.status_code >= 400:
                response.read()
                if response.status_code == 410:
                    raise Gone(_message(response))
                raise Refused(response.status_code, _message(response))
            for line in response.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(str(obj.get("message")))
                    raise Refused(int(obj.get("code") or 500), str(obj.get("message")))
                if kind == "BOOKMARK":
                    rv = (obj.get("metadata") or {}).get("resourceVersion")
                    yield "BOOKMARK", None, str(rv) if rv is not None else None
                    continue
                yield str(kind), DesiredRun.model_validate(obj), None

    def get_node(self, node: str) -> dict[str, Any]:
        response = self._http.get(
            f"/apis/stratum.dev/v1alpha1/nodes/{node}", headers=self._headers()
        )
        result: dict[str, Any] = self._check(response).json()
        return result

    def put_node(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        response = self._http.put(
            f"/apis/stratum.dev/v1alpha1/nodes/{name}", json=body, headers=self._headers()
        )
        result: dict[str, Any] = self._check(response).json()
        return result
