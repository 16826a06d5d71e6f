"""Placement policies: each is ``place(snapshot, request) -> Decision``.

The six peer policies of the FGD paper (random, dotproduct, clustering, packing, bestfit,
fgd) are reimplemented to the letter of BENCHMARKS.md; ``stratum`` is the default policy.
A policy object may keep state across calls (its tie-break order, its learned mix, caches
keyed by snapshot generations), so one object serves one sequence of decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from stratum.scheduling.decision import Decision
from stratum.scheduling.fragmentation import WorkloadMix
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot


class Policy(Protocol):
    """Chooses a node and the exact GPUs for one request."""

    name: str

    def place(self, snapshot: Snapshot, request: Request) -> Decision: ...


PolicyFactory = Callable[..., Policy]

#: Policies in the order the paper lists them, then Stratum's.
POLICY_NAMES = ("random", "dotproduct", "clustering", "packing", "bestfit", "fgd", "stratum")


def make_policy(name: str, *, seed: int, typical: WorkloadMix | None = None) -> Policy:
    """A fresh policy for one run. ``typical`` is the mix FGD is told in advance; every
    other policy ignores it (Stratum learns its own online)."""
    from stratum.scheduling.policies import (
        bestfit,
        clustering,
        dotproduct,
        fgd,
        packing,
        random,
        stratum,
    )

    if name == "random":
        return random.RandomPolicy(seed=seed)
    if name == "dotproduct":
        return dotproduct.DotProductPolicy(seed=seed)
    if name == "clustering":
        return clustering.ClusteringPolicy(seed=seed)
    if name == "packing":
        return packing.PackingPolicy(seed=seed)
    if name == "bestfit":
        return bestfit.BestFitPolicy(seed=seed)
    if name == "fgd":
        if typical is None:
            raise ValueError("fgd needs the typical workload mix of the trace")
        return fgd.FgdPolicy(seed=seed, mix=typical)
    if name == "stratum":
        return stratum.StratumPolicy(seed=seed)
    raise ValueError(f"unknown policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")


__all__ = ["POLICY_NAMES", "Policy", "PolicyFactory", "make_policy"]
