"""One API connection per Cluster, through the official `kubernetes` client.

Objects travel as plain dicts (the manifests module makes them; observe reads them), so
this wrapper only authenticates, sends and turns failures into `KubeError`s whose message
names the API server and what went wrong, and never a credential.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

FIELD_MANAGER = "stratum"

# Where each kind lives: (group/version path, plural, namespaced).
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("api/v1", "namespaces", False),
    "Node": ("api/v1", "nodes", False),
    "Pod": ("api/v1", "pods", True),
    "ConfigMap": ("api/v1", "configmaps", True),
    "ServiceAccount": ("api/v1", "serviceaccounts", True),
    "ResourceQuota": ("api/v1", "resourcequotas", True),
    "Event": ("api/v1", "events", True),
    "NetworkPolicy": ("apis/networking.k8s.io/v1", "networkpolicies", True),
    "PriorityClass": ("apis/scheduling.k8s.io/v1", "priorityclasses", False),
    "ResourceClaim": ("apis/resource.k8s.io/v1", "resourceclaims", True),
    "ResourceSlice": ("apis/resource.k8s.io/v1", "resourceslices", False),
    "DeviceClass": ("apis/resource.k8s.io/v1", "deviceclasses", False),
}


class KubeError(RuntimeError):
    """A request the cluster refused or could not answer; `status` 0: no answer."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def path_of(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    group, plural, namespaced = KINDS[kind]
    path = f"/{group}"
    if namespaced and namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    return path


class KubeClient:
    """The API of one cluster, from a kubeconfig's text (its current context)."""

    def __init__(self, kubeconfig: str, *, cluster: str, timeout: float = 10.0) -> None:
        from kubernetes import config

        try:
            loaded = yaml.safe_load(kubeconfig)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise KubeError(f"cluster {cluster}: the kubeconfig is not YAML{where}") from None
        if not isinstance(loaded, dict) or not loaded.get("clusters"):
            raise KubeError(
                f"cluster {cluster}: credentials 'kubeconfig' is not a kubeconfig "
                "(expected a mapping with clusters, users and contexts)"
            )
        try:
            self.api = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
                loaded, persist_config=False
            )
        except Exception as err:  # the loader's own words name the missing field
            raise KubeError(f"cluster {cluster}: the kubeconfig cannot be used: {err}") from None
        self.api.configuration.retries = 1
        self.server: str = self.api.configuration.host
        self.cluster = cluster
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        # A dict body: the client serializes it as JSON (which is also YAML, for apply).
        method_, url, headers, body_, _ = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(
                method_, url, headers, body_, _request_timeout=timeout or self.timeout
            )
            resp.read()
        except Exception as err:  # urllib3's words name the address, never the token
            raise KubeError(
                f"cluster {self.cluster}: the API server at {self.server} did not answer "
                f"{method} {path}: {type(err).__name__}: {_first_line(err)}"
            ) from None
        data = resp.data or b""
        if 200 <= resp.status < 300:
            return json.loads(data) if data else {}
        try:
            status = json.loads(data)
        except ValueError:
            status = {}
        message = status.get("message") or data[:200].decode(errors="replace")
        reason = status.get("reason", "")
        if resp.status == 401:
            message = "the kubeconfig's credentials were refused (401 Unauthorized)"
        elif resp.status == 403:
            message = f"forbidden: {message}"
        raise KubeError(
            f"cluster {self.cluster}: {method} {path} at {self.server}: "
            f"{resp.status} {reason or resp.reason}: {message}",
            resp.status,
            reason,
        )

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path_of(kind, namespace, name))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        return list(self.iter(kind, namespace, selector))

    def iter(
        self, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> Iterator[dict[str, Any]]:
        query = {"limit": "500"}
        if selector:
            query["labelSelector"] = selector
        while True:
            page = self.request("GET", path_of(kind, namespace), query=query)
            yield from page.get("items") or []
            cont = (page.get("metadata") or {}).get("continue")
            if not cont:
                return
            query["continue"] = cont

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager `stratum` (forcing: Stratum owns these)."""
        meta = obj["metadata"]
        return self.request(
            "PATCH",
            path_of(obj["kind"], meta.get("namespace"), meta["name"]),
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def delete(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        grace_seconds: int | None = None,
    ) -> None:
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": propagation,
        }
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        try:
            self.request("DELETE", path_of(kind, namespace, name), body=options)
        except KubeError as err:
            if err.status != 404:
                raise

    def delete_all(self, kind: str, namespace: str, selector: str) -> None:
        self.request(
            "DELETE",
            path_of(kind, namespace),
            query={"labelSelector": selector},
            body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
        )

    def close(self) -> None:
        self.api.close()


def _first_line(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return text[:300]
