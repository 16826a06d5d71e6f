"""A typed HTTP client for the Stratum API, used by the CLI, the tests and SDK users."""

from __future__ import annotations

import builtins
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx

from stratum.api.v1alpha1 import BY_KIND, Resource
from stratum.core import errors
from stratum.core.errors import ApiError, Cause, Unavailable

PREFIX = "/apis/stratum.dev/v1alpha1"
SIM_PREFIX = "/apis/sim.stratum.dev/v1alpha1"
_BY_CODE: dict[int, type[ApiError]] = {
    400: errors.BadRequest,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    410: errors.Gone,
    413: errors.PayloadTooLarge,
    422: errors.Invalid,
    503: errors.Unavailable,
}
WireObject = dict[str, Any]
_WARNING = re.compile(r'\d{3} \S+ "((?:[^"\\]|\\.)*)"')


def parse_server_clock(value: str | None) -> tuple[datetime, float] | None:
    """`2026-12-01T21:00:00+00:00; rate=60` as (time, rate); None when absent or unreadable."""
    if not value:
        return None
    stamp, _, rest = value.partition(";")
    try:
        at = datetime.fromisoformat(stamp.strip())
        rate = float(rest.strip().removeprefix("rate=")) if rest.strip() else 1.0
    except ValueError:
        return None
    if at.tzinfo is None or not rate > 0:
        return None
    return at, rate


def parse_warnings(values: builtins.list[str]) -> builtins.list[str]:
    """The texts of RFC 7234 Warning headers (`299 - "text"`, possibly several per line)."""
    found = []
    for value in values:
        found += [re.sub(r"\\(.)", r"\1", m.group(1)) for m in _WARNING.finditer(value)]
    return found


def error_from(response: httpx.Response) -> ApiError:
    """The domain error for an error answer (its Status body), as the server raised it."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") or f"HTTP {response.status_code}: {response.text[:200]}"
    causes = [
        Cause(c.get("field", ""), c.get("message", ""), c.get("reason", ""))
        for c in (body.get("details") or {}).get("causes", [])
    ]
    if response.status_code == 409:
        cls: type[ApiError] = (
            errors.AlreadyExists if body.get("reason") == "AlreadyExists" else errors.Conflict
        )
    else:
        cls = _BY_CODE.get(response.status_code, ApiError)
    err = cls(message, causes=causes)
    if cls is ApiError:
        err.code = response.status_code
    return err


def _model(kind: str | type[Resource]) -> type[Resource]:
    return kind if isinstance(kind, type) else BY_KIND[kind]


def resource_path(
    kind: str | type[Resource],
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """/apis/stratum.dev/v1alpha1[/namespaces/NS]/PLURAL[/NAME[/SUB]]."""
    model = _model(kind)
    path = PREFIX
    if model.NAMESPACED and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{model.PLURAL}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


# How long a bulk apply may take per object before the client gives up on an answer.
BULK_SECONDS_PER_ITEM = 0.2


class StratumClient:
    def __init__(
        self,
        server: str,
        token: str | None = None,
        timeout: float = 30.0,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        headers = {"User-Agent": "stratum-client"}
        # Warnings the server sent with the last answer (a policy's warn action, a budget
        # near its limit); `on_warning` hears each one as it comes.
        self.warnings: builtins.list[str] = []
        self._on_warning = on_warning
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server = server.rstrip("/")
        self._timeout = timeout
        # The server's clock as its last answer said it (Stratum-Clock), when this process
        # read it (monotonic), and how fast that clock runs: see server_now().
        self._server_clock: tuple[datetime, float, float] | None = None
        self._http = httpx.Client(
            base_url=self.server,
            headers=headers,
            timeout=timeout,
            event_hooks={"response": [self._note_server_clock]},
        )

    def __repr__(self) -> str:  # never the token
        return f"StratumClient(server={self.server!r})"

    def close(self) -> None:
        self._http.close()

    def _note_server_clock(self, response: httpx.Response) -> None:
        said = parse_server_clock(response.headers.get("stratum-clock"))
        if said is not None:
            self._server_clock = (said[0], time.monotonic(), said[1])

    def server_now(self) -> datetime | None:
        """The time on the server's clock now, carried forward from its last answer at its
        rate (under `stratum up --speed 60`, simulated time); None before any answer or
        from a server that does not say. Ages are measured against this, not this machine's
        clock."""
        if self._server_clock is None:
            return None
        at, read, rate = self._server_clock
        return at + timedelta(seconds=(time.monotonic() - read) * rate)

    def __enter__(self) -> StratumClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------
    def path(
        self,
        kind: str | type[Resource],
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        return resource_path(kind, namespace, name, subresource)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise Unavailable(
                f"cannot reach the Stratum server at {self.server}: {err}; is "
                "`stratum serve` running, and is STRATUM_SERVER right?"
            ) from None
        self.warnings = parse_warnings(response.headers.get_list("warning"))
        for warning in self.warnings:
            if self._on_warning is not None:
                self._on_warning(warning)
        if response.status_code >= 400:
            raise error_from(response)
        return response.json()

    # -- identity, tokens, governance --------------------------------------------------
    def version(self) -> dict[str, Any]:
        """The server's version and API version (GET /version, no token needed)."""
        result: dict[str, Any] = self.request("GET", "/version")
        return result

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{PREFIX}/whoami")
        return result

    def create_token(
        self,
        name: str,
        *,
        subject: str | None = None,
        role: str | None = None,
        tenant: str | None = None,
        service: bool = False,
        expires_in_seconds: int | None = None,
    ) -> dict[str, Any]:
        """A new token; its value (`token`) is in this answer and never again."""
        body: dict[str, Any] = {"name": name, "service": service}
        for key, value in (
            ("subject", subject),
            ("role", role),
            ("tenant", tenant),
            ("expiresInSeconds", expires_in_seconds),
        ):
            if value is not None:
                body[key] = value
        result: dict[str, Any] = self.request("POST", f"{PREFIX}/tokens", json=body)
        return result

    def list_tokens(self) -> builtins.list[dict[str, Any]]:
        items: builtins.list[dict[str, Any]] = self.request("GET", f"{PREFIX}/tokens")["items"]
        return items

    def revoke_token(self, token_id: str, *, with_issued: bool = False) -> dict[str, Any]:
        params = {"withIssued": "true"} if with_issued else {}
        result: dict[str, Any] = self.request(
            "DELETE", f"{PREFIX}/tokens/{token_id}", params=params
        )
        return result

    def sovereignty_report(
        self, *, tenant: str | None = None, start: str | None = None, end: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        params = {k: v for k, v in (("tenant", tenant), ("from", start), ("to", end)) if v}
        items: builtins.list[dict[str, Any]] = self.request(
            "GET", f"{PREFIX}/reports/sovereignty", params=params
        )["items"]
        return items

    def verify_audit(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{PREFIX}/audit/verify")
        return result

    def rotate_secrets(self, *, dry_run: bool = False) -> dict[str, Any]:
        """Re-encrypt every stored secret with the server's newest key (platform admins)."""
        result: dict[str, Any] = self.request(
            "POST", f"{PREFIX}/secrets/rotate", params=_dry(dry_run)
        )
        return result

    # -- verbs -------------------------------------------------------------------------
    def get(
        self, kind: str | type[Resource], name: str, namespace: str | None = None
    ) -> WireObject:
        result: WireObject = self.request("GET", self.path(kind, namespace, name))
        return result

    def list(
        self,
        kind: str | type[Resource],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        limit: int = 500,
    ) -> builtins.list[WireObject]:
        """Every matching object, following continue tokens page by page."""
        items: builtins.list[WireObject] = []
        params: dict[str, Any] = {"limit": limit}
        if label_selector:
            params["labelSelector"] = label_selector
        while True:
            page = self.request("GET", self.path(kind, namespace), params=params)
            items.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                return items
            params["continue"] = token

    def create(self, obj: WireObject, *, dry_run: bool = False) -> WireObject:
        meta = obj["metadata"]
        result: WireObject = self.request(
            "POST", self.path(obj["kind"], meta.get("namespace")), json=obj, params=_dry(dry_run)
        )
        return result

    def replace(self, obj: WireObject, *, dry_run: bool = False) -> WireObject:
        meta = obj["metadata"]
        result: WireObject = self.request(
            "PUT",
            self.path(obj["kind"], meta.get("namespace"), meta["name"]),
            json=obj,
            params=_dry(dry_run),
        )
        return result

    def replace_status(self, obj: WireObject) -> WireObject:
        meta = obj["metadata"]
        result: WireObject = self.request(
            "PUT", self.path(obj["kind"], meta.get("namespace"), meta["name"], "status"), json=obj
        )
        return result

    def apply(self, obj: WireObject, *, dry_run: bool = False) -> WireObject:
        meta = obj["metadata"]
        result: WireObject = self.request(
            "PATCH",
            self.path(obj["kind"], meta.get("namespace"), meta["name"]),
            json=obj,
            params=_dry(dry_run),
        )
        return result

    def placement_preview(self, workload: WireObject) -> WireObject:
        """Where a Workload would be placed now: admitted as a dry run, planned on a copy of
        the fleet, nothing written (`binds`, `nodes`, `message`). Any role that may create
        the Workload may ask; the answer names only the nodes its own replicas would get."""
        namespace = workload["metadata"].get("namespace")
        result: WireObject = self.request(
            "POST", f"{PREFIX}/namespaces/{namespace}/placementpreview", json=workload
        )
        return result

    def apply_list(
        self, items: builtins.list[Any], *, dry_run: bool = False
    ) -> builtins.list[dict[str, Any]]:
        """Apply many objects in one transaction: all are written, or none."""
        body = {"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": items}
        # The server answers once the whole list is checked and written, so the wait grows
        # with the list: a 3,000-object file can take minutes on a busy database, and giving
        # up early would only leave the user guessing whether it landed.
        read_timeout = max(self._timeout, BULK_SECONDS_PER_ITEM * len(items))
        result = self.request(
            "POST",
            f"{PREFIX}/apply",
            json=body,
            params=_dry(dry_run),
            timeout=httpx.Timeout(read_timeout, connect=10.0),
        )
        applied: builtins.list[dict[str, Any]] = result["items"]
        return applied

    def delete(
        self,
        kind: str | type[Resource],
        name: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
    ) -> WireObject:
        params = {"resourceVersion": resource_version} if resource_version else {}
        result: WireObject = self.request("DELETE", self.path(kind, namespace, name), params=params)
        return result

    def watch(
        self,
        kind: str | type[Resource],
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        timeout: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield {"type", "object"} events until the server ends the stream, or until
        nothing came for `timeout` seconds; Unavailable if the server goes away."""
        params: dict[str, Any] = {"watch": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if label_selector:
            params["labelSelector"] = label_selector
        try:
            with self._http.stream(
                "GET",
                self.path(kind, namespace),
                params=params,
                timeout=httpx.Timeout(timeout, connect=10.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.ReadTimeout:
            # Nothing came for `timeout` seconds (the server sends a bookmark every 15 s):
            # the stream ends and the caller decides whether to follow again.
            return
        except httpx.TransportError as err:
            raise Unavailable(f"watch on {self.server} ended: {err}") from None

    # -- logs ----------------------------------------------------------------------------
    def logs(self, name: str, namespace: str, *, replica: int = 0, tail: int | None = None) -> str:
        """What the workload's replica printed (stdout and stderr), the last `tail` lines."""
        params: dict[str, Any] = {"replica": replica}
        if tail is not None:
            params["tail"] = tail
        try:
            response = self._http.get(self.path("Workload", namespace, name, "log"), params=params)
        except httpx.TransportError as err:
            raise Unavailable(f"cannot reach the Stratum server at {self.server}: {err}") from None
        if response.status_code >= 400:
            raise error_from(response)
        return response.text

    def follow_logs(
        self, name: str, namespace: str, *, replica: int = 0, tail: int | None = None
    ) -> Iterator[str]:
        """The output as it grows, until the replica's process ends."""
        params: dict[str, Any] = {"replica": replica, "follow": "true"}
        if tail is not None:
            params["tail"] = tail
        try:
            with self._http.stream(
                "GET",
                self.path("Workload", namespace, name, "log"),
                params=params,
                timeout=httpx.Timeout(None, connect=10.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from(response)
                yield from response.iter_text()
        except httpx.TransportError as err:
            raise Unavailable(f"log stream from {self.server} ended: {err}") from None

    # -- the simulated fleet ------------------------------------------------------------
    def faults(self) -> dict[str, Any]:
        """Faults in force, with the simulator's speed and clock."""
        result: dict[str, Any] = self.request("GET", f"{SIM_PREFIX}/faults")
        return result

    def inject_fault(self, fault: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"{SIM_PREFIX}/faults", json=fault)
        return result

    def clear_faults(self, fault_id: str | None = None) -> builtins.list[dict[str, Any]]:
        if fault_id is None:
            cleared: builtins.list[dict[str, Any]] = self.request("DELETE", f"{SIM_PREFIX}/faults")[
                "cleared"
            ]
            return cleared
        return [self.request("DELETE", f"{SIM_PREFIX}/faults/{fault_id}")]


def _dry(dry_run: bool) -> dict[str, str]:
    return {"dryRun": "All"} if dry_run else {}
