"""Random: one feasible node uniformly at random, and a random fitting GPU on it."""

from __future__ import annotations

import numpy as np

from stratum.scheduling.decision import Decision
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot


class RandomPolicy:
    name = "random"

    def __init__(self, *, seed: int) -> None:
        self._rng = np.random.default_rng([seed, 2])

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        nodes = np.flatnonzero(snapshot.feasible(request))
        if len(nodes) == 0:
            return snapshot.fail(request)
        node = int(nodes[self._rng.integers(len(nodes))])
        gpus: tuple[int, ...] = ()
        if request.gpu_count:
            fits = np.flatnonzero(snapshot.gpu_free[node] >= request.gpu_milli)
            chosen = self._rng.choice(fits, size=request.gpu_count, replace=False)
            gpus = tuple(sorted(int(g) for g in chosen))
        return snapshot.decide(node, gpus, request, 0.0)
