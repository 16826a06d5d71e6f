"""Reads for the pages: the API's own service, with the caller's context, so that every
page shows exactly what the API would answer the same token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratum.core.errors import Forbidden
from stratum.server.security import RequestContext
from stratum.server.services.objects import ObjectService

Obj = dict[str, Any]
Objs = list[Obj]  # `list` is a method name of Reader


@dataclass(frozen=True, slots=True)
class Reader:
    service: ObjectService
    ctx: RequestContext

    @property
    def platform(self) -> bool:
        """The caller reads the whole fleet (platform roles): Nodes, Policies, the audit."""
        return self.ctx.principal.reads_everything

    def list(self, kind: str, namespace: str | None = None, selector: str | None = None) -> Objs:
        return list(
            self.service.list(
                kind, namespace=namespace, label_selector=selector, ctx=self.ctx
            ).items
        )

    def page(
        self, kind: str, *, selector: str | None, limit: int, continue_token: str | None
    ) -> tuple[Objs, str | None]:
        got = self.service.list(
            kind, label_selector=selector, limit=limit, continue_token=continue_token, ctx=self.ctx
        )
        return list(got.items), got.continue_token

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        return dict(self.service.get(kind, namespace, name, ctx=self.ctx))

    def get_or_none(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        from stratum.core.errors import NotFound

        try:
            return self.get(kind, name, namespace)
        except (NotFound, Forbidden):
            return None

    def store_version(self) -> int:
        """The store's resourceVersion now (one counter for every kind). A page read after
        it is watched from it, so a change between the render and the watch is not missed."""
        with self.service.store.read(snapshot=False) as tx:
            return tx.current_resource_version()

    def resource_version(self, kind: str, namespace: str | None = None) -> int:
        return int(
            self.service.list(kind, namespace=namespace, limit=1, ctx=self.ctx).resource_version
        )


def name_of(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def ns_of(obj: Obj) -> str:
    return str(obj["metadata"].get("namespace") or "")


def hardware_of(reader: Reader, node: Obj) -> Obj | None:
    """The node's discovered hardware, else its HardwareProfile's spec."""
    spec = node.get("spec", {})
    if spec.get("hardware"):
        return dict(spec["hardware"])
    profile = spec.get("profile")
    if not profile:
        return None
    found = reader.get_or_none("HardwareProfile", profile)
    return dict(found["spec"]) if found else None
