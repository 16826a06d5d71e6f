"""The pending queue's order: priority, then dominant-resource fair share (moving as work
binds), then the largest request, then age."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stratum.scheduling.queue import FairQueue, QueueItem


def item(
    key: str,
    tenant: str,
    gpus: int,
    *,
    priority: int = 0,
    age: float = 0.0,
    shape: tuple[int, int] = (0, 0),
) -> QueueItem:
    return QueueItem(key, tenant, priority, age, (gpus * 1000.0, 1000.0, 1024.0), shape)


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


def reference_order(queue: FairQueue, charge_every: int) -> list[str]:
    """The queue's rule read literally: each step, scan every item left for the smallest
    (priority, share, size, GPU per replica, tier, age, key); charge the tenant as work
    binds."""
    left = list(queue.items)
    order = []
    while left:
        best = min(
            left,
            key=lambda it: (
                -it.priority,
                queue.dominant_share(it.tenant),
                -it.demand[0],
                -it.shape[0],
                -it.shape[1],
                it.age,
                it.key,
            ),
        )
        left.remove(best)
        order.append(best.key)
        if len(order) % charge_every:
            queue.charge(best.tenant, best.demand)
    return order


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from("abcd"),
            st.integers(0, 2),
            st.integers(0, 16),
            st.integers(0, 5),
            st.tuples(st.integers(0, 2), st.integers(-2, 0)),
        ),
        min_size=0,
        max_size=40,
    ),
    charge_every=st.integers(1, 4),
)
def test_the_order_is_the_one_a_scan_of_every_item_gives(
    specs: list[tuple[str, int, int, int, tuple[int, int]]], charge_every: int
) -> None:
    items = [
        item(f"w{i:02d}", tenant, gpus, priority=priority, age=float(age), shape=shape)
        for i, (tenant, priority, gpus, age, shape) in enumerate(specs)
    ]
    weights = {"a": 1.0, "b": 2.0, "c": 0.5}

    def fresh() -> FairQueue:
        return FairQueue(list(items), (64000.0, 1e6, 1e9), {"d": (8000.0, 0.0, 0.0)}, weights)

    queue = fresh()
    order = []
    for it in queue:  # binding charges the tenant, as the controller does, most of the time
        order.append(it.key)
        if len(order) % charge_every:
            queue.charge(it.tenant, it.demand)
    assert order == reference_order(fresh(), charge_every)
