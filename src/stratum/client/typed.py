"""The Python SDK: `Client` (sync) and `AsyncClient`, with one typed collection per kind.

    from stratum.client import Client
    from stratum.api.v1alpha1 import Workload

    with Client() as c:  # server, token, namespace from STRATUM_* or the config file
        w = c.workloads.apply(Workload.model_validate(manifest))
        c.workloads.wait(w.metadata.name, "phase=Running", timeout=120)
        for event in c.workloads.watch():
            print(event.type, event.object.status.phase)

Objects come back as the API's pydantic models; `apply` takes a model or a plain dict.
The token never appears in a repr or a log line.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx

from stratum.api.v1alpha1 import (
    AuditRecord,
    Cluster,
    ClusterTemplate,
    Event,
    HardwareProfile,
    Node,
    Placement,
    Policy,
    Resource,
    Site,
    Tenant,
    Workload,
    WorkloadTemplate,
)
from stratum.client.config import load_config
from stratum.client.http import PREFIX, StratumClient, error_from, parse_warnings, resource_path
from stratum.client.waiting import Condition, WaitTimeout, check_settled, parse_condition
from stratum.core.errors import Gone, NotFound, Unavailable
from stratum.core.validation import to_wire

T = TypeVar("T", bound=Resource)


@dataclass(frozen=True, slots=True)
class WatchEvent(Generic[T]):
    type: str  # ADDED, MODIFIED, DELETED
    object: T


def _wire(obj: Resource | dict[str, Any]) -> dict[str, Any]:
    return to_wire(obj) if isinstance(obj, Resource) else obj


def _condition(for_: str | Condition) -> Condition:
    return for_ if isinstance(for_, Condition) else parse_condition(for_)


def _settings(
    server: str | None, token: str | None, namespace: str | None
) -> tuple[str, str | None, str | None]:
    config = load_config()
    return (
        server or config.server,
        token if token is not None else config.token,
        namespace or config.namespace,
    )


# -- sync --------------------------------------------------------------------------------
class Resources(Generic[T]):
    """The objects of one kind: `client.workloads`, `client.sites`, ..."""

    def __init__(self, client: Client, model: type[T]) -> None:
        self._client = client
        self.model = model

    def __repr__(self) -> str:
        return f"<Resources {self.model.PLURAL}>"

    def _ns(self, namespace: str | None) -> str | None:
        return (namespace or self._client.namespace) if self.model.NAMESPACED else None

    def get(self, name: str, namespace: str | None = None) -> T:
        return self.model.model_validate(
            self._client.http.get(self.model, name, self._ns(namespace))
        )

    def find(self, name: str, namespace: str | None = None) -> T | None:
        try:
            return self.get(name, namespace)
        except NotFound:
            return None

    def list(
        self,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        all_namespaces: bool = False,
    ) -> builtins.list[T]:
        ns = None if all_namespaces else self._ns(namespace)
        items = self._client.http.list(self.model, namespace=ns, label_selector=selector)
        return [self.model.model_validate(i) for i in items]

    def apply(self, obj: T | dict[str, Any], *, dry_run: bool = False) -> T:
        """Create or update (server-side apply); a namespaced object without a namespace
        goes to the client's namespace."""
        wire = dict(_wire(obj))
        meta = dict(wire.get("metadata") or {})
        if self.model.NAMESPACED and not meta.get("namespace") and self._client.namespace:
            meta["namespace"] = self._client.namespace
        wire["metadata"] = meta
        wire.setdefault("kind", self.model.KIND)
        wire.setdefault("apiVersion", "stratum.dev/v1alpha1")
        return self.model.model_validate(self._client.http.apply(wire, dry_run=dry_run))

    def delete(self, name: str, namespace: str | None = None) -> None:
        self._client.http.delete(self.model, name, self._ns(namespace))

    def watch(
        self,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = None,
    ) -> Generator[WatchEvent[T], None, None]:
        """Changes as they happen (bookmarks skipped), until `timeout` seconds pass idle;
        close() ends the stream early."""
        for event in self._client.http.watch(
            self.model,
            namespace=self._ns(namespace),
            label_selector=selector,
            resource_version=resource_version,
            timeout=timeout,
        ):
            if event["type"] != "BOOKMARK":
                yield WatchEvent(event["type"], self.model.model_validate(event["object"]))

    def wait(
        self,
        name: str,
        for_: str | Condition = "phase=Running",
        *,
        namespace: str | None = None,
        timeout: float = 300.0,
    ) -> T | None:
        """The object once `for_` holds (`phase=Running`, `condition=Ready`, `delete`...);
        WaitTimeout after `timeout` s, WaitFailed when it can no longer come."""
        from stratum.client.waiting import wait_for

        found = wait_for(
            self._client.http,
            self.model.KIND,
            name,
            self._ns(namespace),
            _condition(for_),
            timeout=timeout,
        )
        return None if found is None else self.model.model_validate(found)


class _Kinds:
    """One typed collection per kind, the same on Client and AsyncClient."""

    sites: Any
    hardware_profiles: Any
    cluster_templates: Any
    clusters: Any
    nodes: Any
    tenants: Any
    policies: Any
    workload_templates: Any
    workloads: Any
    placements: Any
    events: Any
    audit_records: Any

    def _bind(self, make: Any) -> None:
        for attr, model in (
            ("sites", Site),
            ("hardware_profiles", HardwareProfile),
            ("cluster_templates", ClusterTemplate),
            ("clusters", Cluster),
            ("nodes", Node),
            ("tenants", Tenant),
            ("policies", Policy),
            ("workload_templates", WorkloadTemplate),
            ("workloads", Workload),
            ("placements", Placement),
            ("events", Event),
            ("audit_records", AuditRecord),
        ):
            setattr(self, attr, make(model))


class Client(_Kinds):
    """A synchronous client. Arguments left out come from STRATUM_SERVER, STRATUM_TOKEN,
    STRATUM_NAMESPACE or the config file (`stratum config view`)."""

    sites: Resources[Site]
    hardware_profiles: Resources[HardwareProfile]
    cluster_templates: Resources[ClusterTemplate]
    clusters: Resources[Cluster]
    nodes: Resources[Node]
    tenants: Resources[Tenant]
    policies: Resources[Policy]
    workload_templates: Resources[WorkloadTemplate]
    workloads: Resources[Workload]
    placements: Resources[Placement]
    events: Resources[Event]
    audit_records: Resources[AuditRecord]

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        server, token, self.namespace = _settings(server, token, namespace)
        self.http = StratumClient(server, token, timeout=timeout)
        self.server = self.http.server
        self._bind(lambda model: Resources(self, model))

    def __repr__(self) -> str:  # never the token
        return f"Client(server={self.server!r}, namespace={self.namespace!r})"

    def version(self) -> dict[str, Any]:
        return self.http.version()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- async -------------------------------------------------------------------------------
class AsyncResources(Generic[T]):
    """The objects of one kind, for asyncio code: `await client.workloads.get(...)`."""

    def __init__(self, client: AsyncClient, model: type[T]) -> None:
        self._client = client
        self.model = model

    def __repr__(self) -> str:
        return f"<AsyncResources {self.model.PLURAL}>"

    def _ns(self, namespace: str | None) -> str | None:
        return (namespace or self._client.namespace) if self.model.NAMESPACED else None

    async def get(self, name: str, namespace: str | None = None) -> T:
        path = resource_path(self.model, self._ns(namespace), name)
        return self.model.model_validate(await self._client.request("GET", path))

    async def list(
        self,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        all_namespaces: bool = False,
    ) -> builtins.list[T]:
        ns = None if all_namespaces else self._ns(namespace)
        params: dict[str, Any] = {"limit": 500}
        if selector:
            params["labelSelector"] = selector
        items: builtins.list[T] = []
        while True:
            page = await self._client.request("GET", resource_path(self.model, ns), params=params)
            items += [self.model.model_validate(i) for i in page["items"]]
            if not page["metadata"].get("continue"):
                return items
            params["continue"] = page["metadata"]["continue"]

    async def apply(self, obj: T | dict[str, Any], *, dry_run: bool = False) -> T:
        wire = dict(_wire(obj))
        meta = dict(wire.get("metadata") or {})
        if self.model.NAMESPACED and not meta.get("namespace") and self._client.namespace:
            meta["namespace"] = self._client.namespace
        wire["metadata"] = meta
        wire.setdefault("kind", self.model.KIND)
        wire.setdefault("apiVersion", "stratum.dev/v1alpha1")
        path = resource_path(self.model, meta.get("namespace"), meta["name"])
        params = {"dryRun": "All"} if dry_run else {}
        return self.model.model_validate(
            await self._client.request("PATCH", path, json=wire, params=params)
        )

    async def delete(self, name: str, namespace: str | None = None) -> None:
        await self._client.request("DELETE", resource_path(self.model, self._ns(namespace), name))

    async def watch(
        self,
        namespace: str | None = None,
        *,
        selector: str | None = None,
        resource_version: str | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[WatchEvent[T]]:
        async for event in self._client.watch_raw(
            resource_path(self.model, self._ns(namespace)), selector, resource_version, timeout
        ):
            if event["type"] != "BOOKMARK":
                yield WatchEvent(event["type"], self.model.model_validate(event["object"]))

    async def wait(
        self,
        name: str,
        for_: str | Condition = "phase=Running",
        *,
        namespace: str | None = None,
        timeout: float = 300.0,
    ) -> T | None:
        condition = _condition(for_)
        ns = self._ns(namespace)
        where = f"{self.model.KIND} {ns + '/' if ns else ''}{name}"
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            try:
                obj: dict[str, Any] | None = await self._client.request(
                    "GET", resource_path(self.model, ns, name)
                )
            except NotFound:
                obj = None
            if check_settled(obj, condition, where):
                return None if obj is None else self.model.model_validate(obj)
            last = obj
            rv = obj["metadata"]["resourceVersion"] if obj else None
            try:
                async for event in self._client.watch_raw(
                    resource_path(self.model, ns),
                    None,
                    rv,
                    max(0.1, deadline - time.monotonic()),
                ):
                    seen = event.get("object") or {}
                    if event["type"] != "BOOKMARK" and seen.get("metadata", {}).get("name") == name:
                        obj = None if event["type"] == "DELETED" else seen
                        if check_settled(obj, condition, where):
                            return None if obj is None else self.model.model_validate(obj)
                        last = obj
                    if time.monotonic() >= deadline:
                        break
            except Gone:
                pass
            if time.monotonic() >= deadline:
                phase = ((last or {}).get("status") or {}).get("phase")
                raise WaitTimeout(
                    f"timed out after {timeout:.3g}s waiting for {where} to reach "
                    f"{condition.text} (it is {'phase ' + phase if phase else 'absent'})"
                )
            await asyncio.sleep(0)


class AsyncClient(_Kinds):
    """The asyncio twin of Client: `async with AsyncClient() as c: await c.workloads.list()`."""

    sites: AsyncResources[Site]
    hardware_profiles: AsyncResources[HardwareProfile]
    cluster_templates: AsyncResources[ClusterTemplate]
    clusters: AsyncResources[Cluster]
    nodes: AsyncResources[Node]
    tenants: AsyncResources[Tenant]
    policies: AsyncResources[Policy]
    workload_templates: AsyncResources[WorkloadTemplate]
    workloads: AsyncResources[Workload]
    placements: AsyncResources[Placement]
    events: AsyncResources[Event]
    audit_records: AsyncResources[AuditRecord]

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        server, token, self.namespace = _settings(server, token, namespace)
        self.server = server.rstrip("/")
        headers = {"User-Agent": "stratum-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(base_url=self.server, headers=headers, timeout=timeout)
        self.warnings: builtins.list[str] = []
        self._bind(lambda model: AsyncResources(self, model))

    def __repr__(self) -> str:  # never the token
        return f"AsyncClient(server={self.server!r}, namespace={self.namespace!r})"

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as err:
            raise Unavailable(f"cannot reach the Stratum server at {self.server}: {err}") from None
        self.warnings = parse_warnings(response.headers.get_list("warning"))
        if response.status_code >= 400:
            raise error_from(response)
        return response.json()

    async def watch_raw(
        self,
        path: str,
        selector: str | None,
        resource_version: str | None,
        timeout: float | None,
    ) -> AsyncIterator[dict[str, Any]]:
        params: dict[str, Any] = {"watch": "true"}
        if resource_version:
            params["resourceVersion"] = resource_version
        if selector:
            params["labelSelector"] = selector
        try:
            async with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(timeout, connect=10.0)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_from(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.ReadTimeout:
            return
        except httpx.TransportError as err:
            raise Unavailable(f"watch on {self.server} ended: {err}") from None

    async def version(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/version")
        return result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


__all__ = [
    "PREFIX",
    "AsyncClient",
    "AsyncResources",
    "Client",
    "Resources",
    "WatchEvent",
]
