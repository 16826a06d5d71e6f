"""GpuClustering: put GPU requests of one class (a share, or k whole GPUs) together.

b = floor(25·(8000 - G)/8000); a node holding only this class scores 75 + b, this class among
others 50 + b, no GPU requests 25 + b, only other classes b. CPU-only requests score 0.
"""

from __future__ import annotations

import numpy as np

from stratum.scheduling.decision import Decision
from stratum.scheduling.policies.ranking import TieBreak, place_tightest
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot


class ClusteringPolicy:
    name = "clustering"

    def __init__(self, *, seed: int) -> None:
        self._tie = TieBreak(seed)

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        feasible = snapshot.feasible(request)
        if request.gpu_count == 0:
            scores = np.zeros(snapshot.size, dtype=np.int64)
        else:
            klass = snapshot.pod_class(request)
            gpu_pods = snapshot.pods_by_class[:, : snapshot.width + 1]
            total = gpu_pods.sum(axis=1)
            same = gpu_pods[:, klass]
            b = (25 * (8000 - snapshot.gpu_free_total)) // 8000
            scores = b + np.where(
                total == 0, 25, np.where(same == total, 75, np.where(same > 0, 50, 0))
            )
        return place_tightest(snapshot, request, scores, feasible, self._tie)
