"""The controllers' World keeps typed objects between passes (ModelCache): a pass sees every
change, creation and deletion exactly as a fresh read does, and reuses what did not change."""

from __future__ import annotations

from typing import Any

from stratum.reconcile.world import ModelCache, World


def _node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"cluster": "c", "site": "s", "rack": "r"},
        "status": {"phase": "Ready", "conditions": []},
    }


def _snapshot(world: World) -> list[tuple[str, str | None, str | None]]:
    return [(k, n.status.phase, n.metadata.resource_version) for k, n in world.nodes.items()]


def test_a_cached_read_equals_a_fresh_read_through_changes(store: Any) -> None:
    with store.write() as tx:
        for i in range(30):
            tx.create(_node(f"n-{i:02d}"))
    cache = ModelCache()
    first = World.read(store, cache)
    assert _snapshot(first) == _snapshot(World.read(store))

    with store.write() as tx:
        body = tx.get("Node", "", "n-07")
        body["status"]["phase"] = "NotReady"
        tx.replace(body, status_only=True)
        tx.delete("Node", "", "n-03")
        tx.create(_node("n-99"))
        tx.create(_node("a-00"))  # sorts first: the order must still be the store's
    second = World.read(store, cache)
    assert _snapshot(second) == _snapshot(World.read(store))
    assert second.nodes["n-07"].status.phase == "NotReady"
    assert "n-03" not in second.nodes and "n-99" in second.nodes
    assert next(iter(second.nodes)) == "a-00"
    # What did not change is the very object of the pass before (nothing validated again).
    assert second.nodes["n-08"] is first.nodes["n-08"]
    assert second.nodes["n-07"] is not first.nodes["n-07"]


def test_most_objects_changed_reads_everything_at_once(store: Any) -> None:
    with store.write() as tx:
        for i in range(10):
            tx.create(_node(f"n-{i:02d}"))
    cache = ModelCache()
    World.read(store, cache)
    with store.write() as tx:
        for i in range(8):
            body = tx.get("Node", "", f"n-{i:02d}")
            body["status"]["phase"] = "NotReady"
            tx.replace(body, status_only=True)
    world = World.read(store, cache)
    assert _snapshot(world) == _snapshot(World.read(store))
    assert sum(n.status.phase == "NotReady" for n in world.nodes.values()) == 8
