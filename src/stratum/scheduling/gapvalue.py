"""What a free gap on a GPU is worth to the expected mix of GPU shares: a look-ahead over the
likely next requests, from the cutting-stock LP of the learned mix.

Packing shares of one GPU is bin packing with a known (learned) distribution of sizes. The LP
relaxation of "cover the expected shares with as few GPUs as possible" (Gilmore-Gomory) gives
each share size m a price y_m: the fraction of a GPU it is worth when every GPU is packed with
an optimal pattern (a share that is plentiful and pairs badly is cheap; one that only fits
beside scarce partners is dear). With these prices, a gap of h milli is worth V(h), the best
total price of shares that fit in it (a knapsack), and putting a share of m milli into a gap
of h loses

    loss(h, m) = V(h) - y_m - V(h - m)  >= 0,

which is 0 exactly when the share completes an optimal pattern for that gap (810 into a free
GPU, 470 beside another 470, 320 beside a 650) and positive when it spoils one (320 into the
530 left by a 470, where a second 470 would have fitted). Everything here is small: one
variable per distinct share size, capacity 1,000 milli.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

CAPACITY = 1000
_EPS = 1e-9


def knapsack_values(sizes: IntArray, values: FloatArray, capacity: int = CAPACITY) -> FloatArray:
    """V[h] for h = 0..capacity: the best total value of items (each size any number of
    times) whose sizes sum to at most h. Binary splitting keeps it to a few vector ops per
    item."""
    v = np.zeros(capacity + 1)
    for m, y in zip(sizes.tolist(), values.tolist(), strict=True):
        if m <= 0 or m > capacity or y <= 0:
            continue
        step, gain = m, y
        while step <= capacity:
            cand = v[:-step] + gain
            np.maximum(v[step:], cand, out=v[step:])
            step, gain = step * 2, gain * 2
    # "at most h": carry the best value forward
    np.maximum.accumulate(v, out=v)
    return v


def _best_pattern(v: FloatArray, sizes: IntArray, values: FloatArray) -> IntArray:
    """Counts per item of a pattern worth V[capacity] (walks the table back)."""
    counts = np.zeros(len(sizes), dtype=np.int64)
    h = len(v) - 1
    while h > 0 and v[h] > _EPS:
        if v[h] <= v[h - 1] + _EPS:
            h -= 1
            continue
        for i, (m, y) in enumerate(zip(sizes.tolist(), values.tolist(), strict=True)):
            if m <= h and abs(v[h] - (y + v[h - m])) <= 1e-7:
                counts[i] += 1
                h -= m
                break
        else:  # numerical slack: no item explains the step
            break
    return counts


def _simplex_max(c: FloatArray, rows: FloatArray) -> FloatArray:
    """max c·y subject to rows·y <= 1, y >= 0 (bounded), by the tableau simplex with Bland's
    rule (the problems here are degenerate: many patterns are tight at once)."""
    r, n = rows.shape
    t = np.zeros((r + 1, n + r + 1))
    t[:r, :n] = rows
    t[:r, n : n + r] = np.eye(r)
    t[:r, -1] = 1.0
    t[r, :n] = -c
    basis = list(range(n, n + r))
    for _ in range(50 * (n + r)):
        enter_candidates = np.flatnonzero(t[r, :-1] < -_EPS)
        if not len(enter_candidates):
            break
        j = int(enter_candidates[0])
        col = t[:r, j]
        positive = col > _EPS
        if not positive.any():
            raise ValueError("unbounded pattern LP")
        ratio = np.full(r, np.inf)
        ratio[positive] = t[:r, -1][positive] / col[positive]
        best = ratio.min()
        ties = np.flatnonzero(ratio <= best + _EPS)
        i = int(min(ties, key=lambda k: basis[k]))
        t[i] /= t[i, j]
        others = np.arange(r + 1) != i
        t[others] -= np.outer(t[others, j], t[i])
        basis[i] = j
    y = np.zeros(n + r)
    for i, b in enumerate(basis):
        y[b] = t[i, -1]
    out: FloatArray = y[:n]
    return out


Pattern = dict[int, int]


def pattern_prices(
    sizes: IntArray,
    counts: FloatArray,
    capacity: int = CAPACITY,
    rounds: int = 200,
    start: Sequence[Pattern] = (),
) -> tuple[FloatArray, list[Pattern]]:
    """Dual prices of the cutting-stock LP: min Σ x_p s.t. Σ_p a_ip x_p >= counts_i, solved
    as its dual max Σ counts_i y_i s.t. Σ_i a_ip y_i <= 1 for every pattern p, by adding the
    most violated pattern (a knapsack over the current prices) until none is.

    ``start``: patterns ({size: count}) found for an earlier mix, tried first (a refresh of
    a learned mix needs few new ones). Returns the prices and the patterns used."""
    sizes = np.asarray(sizes, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.float64)
    if not len(sizes):
        return np.zeros(0), []
    index = {int(m): i for i, m in enumerate(sizes.tolist())}
    # The single-size patterns keep the LP bounded.
    rows = [np.where(np.arange(len(sizes)) == i, capacity // m, 0) for i, m in enumerate(sizes)]
    for pattern in start:
        if all(m in index for m in pattern) and sum(m * k for m, k in pattern.items()) <= capacity:
            row = np.zeros(len(sizes), dtype=np.int64)
            for m, k in pattern.items():
                row[index[m]] = k
            rows.append(row)
    y = np.zeros(len(sizes))
    for _ in range(rounds):
        y = _simplex_max(counts, np.array(rows, dtype=np.float64))
        v = knapsack_values(sizes, y, capacity)
        if v[capacity] <= 1.0 + 1e-7:
            break
        rows.append(_best_pattern(v, sizes, y))
    # Keep the tight patterns only (those an optimal packing may use), so that the set
    # carried from refresh to refresh stays small.
    patterns = [
        {int(sizes[i]): int(k) for i, k in enumerate(row.tolist()) if k}
        for row in rows[len(sizes) :]
        if float(row @ y) >= 1.0 - 1e-7
    ]
    return y, patterns


class GapValue:
    """loss(h, m) for every gap h and share m of a mix, from its pattern prices."""

    __slots__ = ("_price", "patterns", "value")

    def __init__(self, sizes: IntArray, counts: FloatArray, start: Sequence[Pattern] = ()) -> None:
        sizes = np.asarray(sizes, dtype=np.int64)
        price, self.patterns = pattern_prices(sizes, counts, start=start)
        #: V[h]: worth of a gap of h milli, in GPUs
        self.value = knapsack_values(sizes, price)
        self._price = dict(zip(sizes.tolist(), price.tolist(), strict=True))

    def price(self, milli: int) -> float:
        """y_m; a size outside the mix is worth what the mix's shares fitting in it are."""
        return float(self._price.get(milli, self.value[min(milli, CAPACITY)]))

    def loss(
        self,
        gap: IntArray,
        milli: int,
        live_before: BoolArray | None = None,
        live_after: BoolArray | None = None,
    ) -> FloatArray:
        """V(h) - y_m - V(h - m) for gaps h >= m (in GPUs, >= 0). ``live_before`` and
        ``live_after`` say, per gap, whether shares can still come to fill it before and after
        the placement (their node keeps CPU for them); a dead gap is worth nothing."""
        before = self.value[gap]
        after = self.value[gap - milli]
        if live_before is not None:
            before = before * live_before
        if live_after is not None:
            after = after * live_after
        out: FloatArray = np.maximum(before - self.price(milli) - after, 0.0)
        return out


class ModelGapValue:
    """loss(h, m) per GPU model: a gap on a node of model M is worth what the shares that
    may land on M could make of it. A share pinned to models A counts against those models
    only (in proportion to their GPUs); an unpinned share against every model in proportion
    to its GPUs. Models with the same resulting mix share one LP (on a mix without pins,
    every model gets the same prices, the single-LP look-ahead)."""

    __slots__ = ("_price", "_value", "patterns")

    def __init__(self, sizes: IntArray, counts: FloatArray, start: Sequence[Pattern] = ()) -> None:
        """``counts``: (models x sizes) expected shares of each size per model."""
        sizes = np.asarray(sizes, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.float64)
        n_models = counts.shape[0]
        self._value = np.zeros((n_models, CAPACITY + 1))
        self._price = np.zeros((n_models, CAPACITY + 1))
        self.patterns: list[Pattern] = []
        totals = counts.sum(axis=1, keepdims=True)
        share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        solved: dict[bytes, GapValue] = {}
        for model in range(n_models):
            if totals[model, 0] <= 0:
                continue
            keep = counts[model] > 0
            key = np.round(share[model], 6).tobytes()
            gap = solved.get(key)
            if gap is None:
                gap = GapValue(sizes[keep], counts[model, keep], start)
                solved[key] = gap
                self.patterns.extend(p for p in gap.patterns if p not in self.patterns)
            self._value[model] = gap.value
            # y_m for the mix's sizes; any other size is worth what fits in it.
            self._price[model] = gap.value
            for m in sizes[keep].tolist():
                self._price[model, m] = gap.price(m)

    def loss(
        self,
        model: IntArray,
        gap: IntArray,
        milli: int,
        live_before: BoolArray | None = None,
        live_after: BoolArray | None = None,
    ) -> FloatArray:
        """V_M(h) - y_M(m) - V_M(h - m) per row of ``model`` and ``gap`` (see GapValue)."""
        before = self._value[model, gap]
        after = self._value[model, gap - milli]
        if live_before is not None:
            before = before * live_before
        if live_after is not None:
            after = after * live_after
        out: FloatArray = np.maximum(before - self._price[model, milli] - after, 0.0)
        return out
