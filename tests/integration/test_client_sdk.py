"""The Python SDK as a user writes it: `from stratum.client import Client`, typed
objects, watch and wait, sync and async, and a token that never shows."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stratum.api.v1alpha1 import Tenant, Workload
from stratum.client import AsyncClient, Client, WaitTimeout
from stratum.testing.harness import LiveServer


def _workload(name: str) -> Workload:
    return Workload.model_validate(
        {"metadata": {"name": name, "labels": {"app": "x"}}, "spec": {"type": "batch"}}
    )


def test_typed_sync_client(live_server: LiveServer) -> None:
    with Client(live_server.url, live_server.token, namespace="team") as c:
        assert live_server.token not in repr(c) and live_server.token not in repr(c.http)
        c.tenants.apply(Tenant.model_validate({"metadata": {"name": "team"}, "spec": {}}))
        made = c.workloads.apply(_workload("w1"))  # namespace from the client
        assert isinstance(made, Workload) and made.metadata.namespace == "team"
        assert c.workloads.get("w1").spec.type == "batch"
        assert [w.metadata.name for w in c.workloads.list(selector="app=x")] == ["w1"]
        assert c.workloads.find("ghost") is None
        assert c.version()["version"]

        rv = made.metadata.resource_version
        events = c.workloads.watch(resource_version=rv, timeout=10)
        c.workloads.apply(_workload("w2"))
        first = next(events)
        assert (first.type, first.object.metadata.name) == ("ADDED", "w2")
        events.close()

        # wait: a deletion made by another thread ends the wait; a state that never
        # comes raises WaitTimeout naming the object.
        threading.Timer(0.5, lambda: c.workloads.delete("w2")).start()
        assert c.workloads.wait("w2", "delete", timeout=20) is None
        started = time.monotonic()
        with pytest.raises(WaitTimeout, match="Workload team/w1"):
            c.workloads.wait("w1", "condition=Ready", timeout=1)
        assert time.monotonic() - started < 10


def test_typed_async_client(live_server: LiveServer) -> None:
    async def scenario() -> None:
        async with AsyncClient(live_server.url, live_server.token, namespace="team") as c:
            assert live_server.token not in repr(c)
            await c.tenants.apply({"metadata": {"name": "team"}, "spec": {}})
            made = await c.workloads.apply(_workload("a1"))
            assert made.metadata.namespace == "team"
            assert [w.metadata.name for w in await c.workloads.list()] == ["a1"]
            assert (await c.workloads.get("a1")).spec.type == "batch"

            async def delete_soon() -> None:
                await asyncio.sleep(0.5)
                await c.workloads.delete("a1")

            task = asyncio.create_task(delete_soon())
            assert await c.workloads.wait("a1", "delete", timeout=20) is None
            await task

    asyncio.run(scenario())
