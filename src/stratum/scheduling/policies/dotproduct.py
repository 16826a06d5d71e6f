"""DotProduct: the smallest dot product of the node's free (CPU, GPU) and the request wins.

score = floor(100·(1 - dot/2)), dot = (c/128000)(r_c/128000) + (G/8000)(R/8000), computed in
exact integers: dot = (c·r_c + 256·G·R) / 128000².
"""

from __future__ import annotations

from stratum.scheduling.decision import Decision
from stratum.scheduling.policies.ranking import TieBreak, place_tightest
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot

_DEN = 128_000 * 128_000


class DotProductPolicy:
    name = "dotproduct"

    def __init__(self, *, seed: int) -> None:
        self._tie = TieBreak(seed)

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        feasible = snapshot.feasible(request)
        x = snapshot.cpu_free * request.cpu_milli + 256 * snapshot.gpu_free_total * (
            request.gpu_total_milli
        )
        scores = (100 * _DEN - 50 * x) // _DEN
        return place_tightest(snapshot, request, scores, feasible, self._tie)
