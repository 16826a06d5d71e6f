"""GpuPacking: fill GPUs already shared, then nodes already in use, then free nodes.

A node with all GPUs free scores max(33 - n, n) for its n GPUs; if the request must take
fully free GPUs elsewhere, max(50 - GPUs it takes, 33); if it fits on a shared GPU
(tightest first), max(100 - ⌊⌊free % of that GPU after placement⌋/10⌋, 50).
CPU-only requests score 0.
"""

from __future__ import annotations

import numpy as np

from stratum.scheduling.decision import Decision
from stratum.scheduling.policies.ranking import TieBreak, place_tightest
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import Snapshot


class PackingPolicy:
    name = "packing"

    def __init__(self, *, seed: int) -> None:
        self._tie = TieBreak(seed)

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        feasible = snapshot.feasible(request)
        if request.gpu_count == 0:
            scores = np.zeros(snapshot.size, dtype=np.int64)
        else:
            n = snapshot.gpu_count
            all_free = np.maximum(33 - n, n)
            takes_free = max(50 - request.gpu_count, 33)
            if request.is_sharing:
                g = snapshot.gpu_free
                m = request.gpu_milli
                partial = np.where((g >= m) & (g < MILLI), g, 10 * MILLI).min(axis=1)
                # free % after placement, floored, then floored tenths: (g - m)·100/1000/10.
                shared = np.maximum(100 - (partial - m) // 100, 50)
                used = np.where(partial < 10 * MILLI, shared, takes_free)
            else:
                used = np.full(snapshot.size, takes_free, dtype=np.int64)
            scores = np.where(snapshot.gpu_full == n, all_free, used).astype(np.int64)
        return place_tightest(snapshot, request, scores, feasible, self._tie)
