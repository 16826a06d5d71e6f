"""How the peer policies turn integer scores into one node: highest score wins, and a tie goes
to the node that comes first in one random permutation drawn per seed before the first
request and kept for the whole run (the FGD paper's simulator behaves this way)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.decision import Decision
from stratum.scheduling.request import Request
from stratum.scheduling.snapshot import Snapshot

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


class TieBreak:
    """A per-seed node order; ``pick`` chooses the best-scoring feasible node."""

    __slots__ = ("_lineage", "_seed", "_weight")

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lineage = -1
        self._weight: IntArray = np.zeros(0, dtype=np.int64)

    def weight(self, snapshot: Snapshot) -> IntArray:
        """N-1 for the first node of the permutation down to 0 for the last."""
        if len(self._weight) != snapshot.size:
            # A separate stream from the trace shuffle, which uses the bare seed.
            rng = np.random.default_rng([self._seed, 1])
            rank = np.empty(snapshot.size, dtype=np.int64)
            rank[rng.permutation(snapshot.size)] = np.arange(snapshot.size)
            self._weight = (snapshot.size - 1 - rank).astype(np.int64)
        return self._weight

    def pick(self, snapshot: Snapshot, scores: IntArray, feasible: BoolArray) -> int:
        """The feasible node with the highest score, first in the permutation on ties;
        -1 when none is feasible. Scores must be non-negative integers."""
        rows = feasible.nonzero()[0]
        return self.pick_among(snapshot, rows, scores[rows]) if len(rows) else -1

    def pick_among(self, snapshot: Snapshot, rows: IntArray, scores: IntArray) -> int:
        """The node of ``rows`` (not empty) with the highest of ``scores`` (one per row),
        first in the permutation on ties."""
        key = scores * snapshot.size + self.weight(snapshot)[rows]
        return int(rows[key.argmax()])


def place_tightest(
    snapshot: Snapshot, request: Request, scores: IntArray, feasible: BoolArray, tie: TieBreak
) -> Decision:
    """Pick a node by score and take the tightest fitting GPUs on it."""
    node = tie.pick(snapshot, scores, feasible)
    if node < 0:
        return snapshot.fail(request)
    return snapshot.decide(
        node, snapshot.tightest_gpus(node, request), request, float(scores[node])
    )
