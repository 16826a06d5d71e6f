"""The pending queue's order: priority, then dominant-resource fair share (moving as work
binds), then the largest request, then age."""

from __future__ import annotations

from stratum.scheduling.queue import FairQueue, QueueItem


def item(key: str, tenant: str, gpus: int, *, priority: int = 0, age: float = 0.0) -> QueueItem:
    return QueueItem(key, tenant, priority, age, (gpus * 1000.0, 1000.0, 1024.0))


def test_priority_then_share_then_size_then_age() -> None:
    queue = FairQueue(
        [
            item("small-old", "a", 1, age=1),
            item("big-young", "a", 16, age=9),
            item("mid", "a", 8, age=5),
            item("urgent", "b", 1, priority=5),
            item("same-size-younger", "a", 8, age=7),
        ],
        capacity=(64000.0, 1e6, 1e9),
    )
    assert [i.key for i in queue] == [
        "urgent",
        "big-young",
        "mid",
        "same-size-younger",
        "small-old",
    ]


def test_a_tenant_that_binds_yields_to_the_one_with_the_smaller_share() -> None:
    queue = FairQueue(
        [item("a1", "a", 8), item("a2", "a", 8), item("b1", "b", 1)],
        capacity=(64000.0, 1e6, 1e9),
        weights={"a": 1.0, "b": 1.0},
    )
    order = []
    for it in queue:
        order.append(it.key)
        queue.charge(it.tenant, it.demand)
    # a1 first (largest, equal shares of 0); then b, whose share is now the smaller.
    assert order == ["a1", "b1", "a2"]
