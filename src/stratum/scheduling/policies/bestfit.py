"""BestFit: least leftover wins.

score = floor(100·(1 - [0.5·(c - r_c)/128000 + 0.5·(G - R)/8000])), in exact integers.
"""

from __future__ import annotations

from stratum.scheduling.decision import Decision
from stratum.scheduling.policies.ranking import TieBreak, place_tightest
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot


class BestFitPolicy:
    name = "bestfit"

    def __init__(self, *, seed: int) -> None:
        self._tie = TieBreak(seed)

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        feasible = snapshot.feasible(request)
        left = 50 * (snapshot.cpu_free - request.cpu_milli) + 800 * (
            snapshot.gpu_free_total - request.gpu_total_milli
        )
        scores = (12_800_000 - left) // 128_000
        return place_tightest(snapshot, request, scores, feasible, self._tie)
