"""The agent protocol's logic: a host joins with its Cluster's bootstrap token and gets a
node-bound token, reads what it must run (the Placements naming it), and reports.

The bootstrap token is a credential of the Cluster (`spec.credentials.bootstrapToken`,
sealed at rest); a Cluster with `backend: agent` and no such credential admits nobody.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from stratum.api.v1alpha1 import Node
from stratum.backends.agent.backend import AgentBackend
from stratum.backends.agent.protocol import (
    DesiredRun,
    JoinAnswer,
    JoinRequest,
    NodeReport,
    ReportAnswer,
    desired_run,
    names_node,
)
from stratum.core.access import Principal, check_node
from stratum.core.errors import Cause, Conflict, Invalid, NotFound, Unauthorized
from stratum.core.lifecycle import HOLDING
from stratum.core.secrets import Keyring, open_credentials
from stratum.core.validation import to_wire
from stratum.server.services.tokens import TokenService
from stratum.store.objects import ObjectStore

BOOTSTRAP_CREDENTIAL = "bootstrapToken"
AGENT_BACKEND = "agent"
JOIN_ACTOR = "system:agent-join"
_HOLDING = frozenset(str(p) for p in HOLDING)


class AgentService:
    def __init__(
        self,
        store: ObjectStore,
        tokens: TokenService,
        backend: AgentBackend | None,
        *,
        keyring: Keyring | None,
        on_write: Callable[[], None],
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.backend = backend
        self.keyring = keyring
        self.on_write = on_write

    def _running(self) -> AgentBackend:
        if self.backend is None:
            raise NotFound("this server runs no agent backend (stratum serve --backend agent)")
        return self.backend

    # -- join --------------------------------------------------------------------------
    def admitted(self, header: str | None) -> list[dict[str, Any]]:
        """The agent Clusters whose bootstrap token is this request's bearer; 401 if none
        (asked before the body is read: an unadmitted caller causes no parsing)."""
        bootstrap = _bearer(header)
        if self.backend is None:
            raise Unauthorized("this server runs no agent backend: no host may join")
        with self.store.read() as tx:
            clusters = [
                c for c in tx.list("Cluster").items if c["spec"].get("backend") == AGENT_BACKEND
            ]
        matches = []
        for cluster in clusters:
            try:
                secret = open_credentials(self.keyring, cluster).get(BOOTSTRAP_CREDENTIAL)
            except Exception:  # an unreadable credential admits nobody
                continue
            if secret and hmac.compare_digest(secret.encode(), bootstrap.encode()):
                matches.append(cluster)
        if not matches:
            # One answer for a wrong token and for no cluster: nothing to probe.
            raise Unauthorized("the bootstrap token matches no Cluster with backend: agent")
        return matches

    def join(
        self, admitted: list[dict[str, Any]], request: JoinRequest, *, source: str | None
    ) -> JoinAnswer:
        backend = self._running()
        by_name = {c["metadata"]["name"]: c for c in admitted}
        if request.cluster is not None and request.cluster not in by_name:
            raise Unauthorized(f"the bootstrap token is not cluster {request.cluster!r}'s")
        cluster = by_name[request.cluster] if request.cluster else admitted[0]
        node = request.node
        with self.store.write() as tx:
            site = cluster["spec"]["site"]
            labels = {
                "stratum.dev/cluster": cluster["metadata"]["name"],
                "stratum.dev/site": site,
                "stratum.dev/agent": "true",
            }
            existing = tx.find("Node", "", node)
            spec: dict[str, Any] = {
                "cluster": cluster["metadata"]["name"],
                "site": site,
                "hardware": request.hardware.model_dump(mode="json", by_alias=True),
            }
            if request.rack:
                spec["rack"] = request.rack
                labels["stratum.dev/rack"] = request.rack
            if existing is None:
                body = to_wire(
                    Node.model_validate(
                        {
                            "metadata": {"name": node, "labels": labels},
                            "spec": spec,
                            "status": {"phase": "Ready"},
                        }
                    )
                )
                body["apiVersion"] = "stratum.dev/v1alpha1"
                tx.create(body)
            else:
                if existing["spec"].get("cluster") != spec["cluster"]:
                    raise Conflict(
                        f"Node {node} belongs to cluster {existing['spec'].get('cluster')!r}, "
                        f"not {spec['cluster']!r}: pick another --name"
                    )
                if (existing["metadata"].get("labels") or {}).get("stratum.dev/agent") != "true":
                    raise Conflict(f"Node {node} is not an agent's node: pick another --name")
                existing["spec"].update(spec)
                existing["metadata"]["labels"] = {
                    **(existing["metadata"].get("labels") or {}),
                    **labels,
                }
                tx.replace(existing)
        made = self.tokens.issue_node_token(
            node, cluster=cluster["metadata"]["name"], source=source
        )
        backend.joined(node, cluster["metadata"]["name"])
        self.on_write()
        live = backend.liveness
        return JoinAnswer(
            node=node,
            cluster=cluster["metadata"]["name"],
            token=made.value,
            heartbeat_seconds=live.heartbeat_seconds,
            not_ready_after_seconds=live.not_ready_after_seconds,
            grace_seconds=live.grace_seconds,
        )

    # -- desired state -----------------------------------------------------------------
    def desired(self, principal: Principal, node: str) -> tuple[list[DesiredRun], int]:
        check_node(principal, node)
        with self.store.read(snapshot=True) as tx:
            rv = tx.current_resource_version()
            placements = [p for p in tx.list("Placement").items if names_node(p, node)]
            runs = [self._desired(tx, p) for p in placements]
        return runs, rv

    def desired_one(self, placement: dict[str, Any]) -> DesiredRun:
        with self.store.read() as tx:
            return self._desired(tx, placement)

    @staticmethod
    def _desired(tx: Any, placement: dict[str, Any]) -> DesiredRun:
        meta = placement["metadata"]
        workload = tx.find("Workload", meta.get("namespace", ""), meta["name"])
        return desired_run(placement, workload, holding=_HOLDING)

    # -- reports -----------------------------------------------------------------------
    def report(self, principal: Principal, node: str, report: NodeReport) -> ReportAnswer:
        check_node(principal, node)
        if report.node != node:
            message = f"the report is for {report.node!r}, sent to node {node!r}'s address"
            raise Invalid(f"node: {message}", causes=[Cause("node", message)])
        backend = self._running()
        cluster = backend.cluster_of(node) or self.lookup_cluster(node)
        backend.record(report, cluster=cluster)
        live = backend.liveness
        return ReportAnswer(
            heartbeat_seconds=live.heartbeat_seconds,
            not_ready_after_seconds=live.not_ready_after_seconds,
            grace_seconds=live.grace_seconds,
        )

    def knows(self, node: str) -> bool:
        """Whether a report for `node` can be taken without reading the store."""
        return self.backend is not None and self.backend.cluster_of(node) is not None

    def lookup_cluster(self, node: str) -> str:
        """The cluster of a Node the backend has not heard of (a store read)."""
        with self.store.read() as tx:
            found = tx.find("Node", "", node)
        if found is None:
            raise NotFound(f"Node {node} not found: the agent must join again")
        return str(found["spec"]["cluster"])

    def expect_known_nodes(self) -> None:
        """At start: every agent Node in the store is expected to report from now on."""
        if self.backend is None:
            return
        with self.store.read() as tx:
            agent_clusters = {
                c["metadata"]["name"]
                for c in tx.list("Cluster").items
                if c["spec"].get("backend") == AGENT_BACKEND
            }
            nodes = [
                (n["metadata"]["name"], n["spec"]["cluster"])
                for n in tx.list("Node").items
                if n["spec"].get("cluster") in agent_clusters
            ]
        self.backend.expect(nodes)


def _bearer(header: str | None) -> str:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthorized("expected 'Authorization: Bearer BOOTSTRAP-TOKEN' (the Cluster's)")
    return value.strip()
