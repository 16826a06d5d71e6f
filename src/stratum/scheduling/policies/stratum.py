"""Stratum's default policy: fragmentation gradient descent over a workload mix it learns
online, with a capacity-aware fragment.

What it does differently from FGD, each kept because it measured better on the openb trace
(docs/benchmarks.md):

* The mix is learned from the requests that have arrived so far (exponentially decayed
  counts of request shapes), never read in advance. The mix used for scoring is refreshed at
  1, 2, 4, ... 4096 requests seen, then every 4096; a refresh keeps the cached scores and
  rescores at most ``rescore_budget`` of them per decision (bounded latency on large fleets).
* The fragment blends FGD's ("can one more request of type t fit?") with a capacity-aware one
  ("how much free GPU would stay idle if the node filled up with type t?"), which sees CPU
  running out before GPUs do. 20% capacity-aware measured best (4.38% vs 4.82% for FGD on 3
  seeds of the default list; 50%: 4.52%, 100%: 4.66%).
* A look-ahead over GPU shares (``gapvalue.py``): the cutting-stock LP of the learned mix
  prices each share size, and a share's score is lowered by the pattern value it spoils on
  the GPU it takes (a 320 beside a 470, where a second 470 would have fitted), so that shares
  pair the way an optimal packing of the mix would; a gap on a node left without CPU for
  shares is worth nothing. 4.40% -> 4.02% on the default list (10 seeds).
* Capacity only some nodes have is kept for the requests that need it (``reserve.py``): GPU
  models that pinned requests depend on (pinned-model pressure), nodes with the GPUs and
  CPU of the mix's multi-GPU classes when fewer are left than twice the expected requests
  (slot reserve), and, lightly and always, nodes able to host requests that few nodes of the
  fleet could ever host, seen or not (scarce-capability reserve). The look-ahead's LP is
  solved per GPU model. A shift of the mix is detected by comparing a fast-learned mix with
  the learned one (docs/benchmarks.md, "B1 held-out lists").
* Scores are quantised like FGD's (⌊100·sigmoid(drop/1000)⌋) and ties go to one node order
  per seed: quantisation plus a fixed order packs requests onto the same nodes, which an
  exact ranking would spread (FGD with exact ranking: 5.8%).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from stratum.scheduling.decision import Decision
from stratum.scheduling.fragmentation import BlendedFrag, Shape, WorkloadMix
from stratum.scheduling.gapvalue import ModelGapValue, Pattern
from stratum.scheduling.policies.ranking import TieBreak
from stratum.scheduling.policies.reserve import (
    SlotBook,
    mix_classes,
    model_pressure,
    pinned_share,
    request_reach,
    scarce_classes,
)
from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import Snapshot

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Rows scored at once from which nodes in the same state are found and scored once: below
#: it, finding them costs more than it saves (benchmarks/bench_policy_ab.py).
DISTINCT_FROM = 32


@dataclass(frozen=True, slots=True)
class StratumConfig:
    """Knobs of the default policy; the defaults are the measured best."""

    capacity_weight: float = 0.2
    #: half-life of the learned mix, in requests
    half_life: float = 5000.0
    #: share of the learned weight the scoring mix covers (FGD's "typical pods": 95%)
    coverage: float = 0.95
    #: refresh the scoring mix at powers of two up to this many requests, then every this many
    refresh_every: int = 4096
    #: scale of the sigmoid that turns a fragmentation drop into a 0..100 score
    scale: float = 1000.0
    #: after a mix refresh, rows still scored under the previous mix are rescored at most this
    #: many per decision (rows whose node changed are always rescored): bounds the latency of
    #: a refresh on a large fleet; a fleet of at most this many nodes is rescored at once
    rescore_budget: int = 2048
    #: weight of the look-ahead over GPU shares (gapvalue.py): a share's score is lowered by
    #: this x 1000 x the pattern value it spoils on its GPU; 0 turns the look-ahead off
    gap_loss_weight: float = 10.0
    #: a gap on a node left with less CPU than the mix's shares ask for on average is worth
    #: nothing to the look-ahead (no share can come to fill it)
    gap_cpu_aware: bool = True
    #: one look-ahead per GPU model: a share pinned to some models counts only against the
    #: gaps of those models (off: one LP over all shares, as if none were pinned)
    gap_per_model: bool = True
    #: a GPU request's score is lowered by this x its milli-GPU x the pinned pressure of the
    #: node's model above the least pressed model it may use (reserve.py); 0 turns it off
    pin_weight: float = 10.0
    #: the pin weight falls in proportion to the pinned share of the mix's GPU demand below
    #: this share (a mix with few pins spends less packing on keeping models for them; 0.5:
    #: gpuspec10 4.78 -> 4.36, spec25 5.31 -> 5.22, spec40 8.50 -> 8.45); 0: a fixed weight
    pin_full_share: float = 0.5
    #: ... but never below this share of ``pin_weight``: a model that a few pinned requests
    #: depend on is still kept for them
    pin_floor: float = 0.2
    #: keep slots for the mix's multi-GPU classes when fewer are left than this x the requests
    #: of the class expected before the fleet fills (reserve.py); 0 turns it off
    reserve_margin: float = 2.0
    #: a mix shift is declared when the GPU demand of a fast-learned mix (half-life
    #: ``shift_half_life``) and of the learned mix, by request class, differ by more than
    #: this (total variation) at two checks in a row; the learned mix then restarts from the
    #: fast one and is refreshed at once. 0 turns it off
    shift_tv: float = 0.1
    shift_half_life: float = 500.0
    #: requests between two checks for a shift
    shift_check_every: int = 128
    #: nodes able to host requests that at most this share of the fleet could ever host
    #: (reserve.scarce_classes) are left to them: a request that fits on more nodes has its
    #: drop lowered by ``scarce_weight`` x 1000 x the GPUs' worth of such slots it would take.
    #: 0 turns it off
    scarce_share: float = 0.05
    scarce_weight: float = 0.03


class LearnedMix:
    """Decayed counts of request shapes seen so far."""

    __slots__ = ("_decay", "_scale", "_weights", "seen")

    @property
    def weights(self) -> dict[Shape, float]:
        """Every shape seen and its decayed weight (relative: only ratios mean anything)."""
        return self._weights

    def __init__(self, half_life: float) -> None:
        self._decay = 0.5 ** (1.0 / half_life) if half_life > 0 else 1.0
        self._scale = 1.0
        self._weights: dict[Shape, float] = {}
        self.seen = 0

    def observe(self, shape: Shape) -> None:
        """One more request of ``shape`` (``Request.shape``) seen."""
        # Rather than decaying every weight, grow the increment; renormalise before overflow.
        self._scale /= self._decay
        if self._scale > 1e200:
            self._weights = {s: w / self._scale for s, w in self._weights.items()}
            self._scale = 1.0
        self._weights[shape] = self._weights.get(shape, 0.0) + self._scale
        self.seen += 1

    def adopt(self, other: LearnedMix) -> None:
        """Forget what was learned and start from ``other``'s weights (after a mix shift)."""
        self._weights = {s: w / other._scale for s, w in other._weights.items()}
        self._scale = 1.0

    def demand_by_class(self) -> dict[tuple[int, bool, bool], float]:
        """Share of the GPU demand per request class (GPUs asked, share or not, pinned)."""
        out: dict[tuple[int, bool, bool], float] = {}
        for (_cpu, milli, count, models), w in self._weights.items():
            if count:
                key = (count, milli < MILLI, bool(models))
                out[key] = out.get(key, 0.0) + w * milli * count
        total = sum(out.values())
        return {k: v / total for k, v in out.items()} if total > 0 else {}

    def typical(self, coverage: float) -> WorkloadMix:
        ranked = sorted(self._weights.items(), key=lambda kv: -kv[1])
        total = sum(w for _, w in ranked)
        chosen: dict[Shape, float] = {}
        covered = 0.0
        for shape, w in ranked:
            chosen[shape] = w
            covered += w
            if covered >= coverage * total:
                break
        return WorkloadMix.from_weights(chosen)


@dataclass(slots=True)
class _ShapeScores:
    #: node generation each row was scored at (-1: never)
    generation: IntArray
    #: mix epoch each row was scored under
    epoch: IntArray
    #: fragmentation drop of the best placement on the row (look-ahead loss included)
    drop: FloatArray
    #: the drop quantised (what the row scores when no pin penalty applies)
    score: IntArray
    gpu: IntArray
    #: the mix epoch under which no row is left scored under an older one
    current: int


class StratumPolicy:
    name = "stratum"

    def __init__(self, *, seed: int, config: StratumConfig | None = None) -> None:
        self.config = config or StratumConfig()
        self._tie = TieBreak(seed)
        self._learned = LearnedMix(self.config.half_life)
        self._fast = LearnedMix(self.config.shift_half_life) if self.config.shift_tv else None
        self._shift_votes = 0
        #: mix shifts detected so far
        self.shifts = 0
        self._mix: WorkloadMix | None = None
        self._frag: BlendedFrag | None = None
        self._gap: ModelGapValue | None = None
        self._gap_cpu = 0
        self._press: FloatArray = np.zeros(0)
        self._press_floor: dict[frozenset[str], float] = {}
        self._pin_weight = self.config.pin_weight
        # Slots of the mix's multi-GPU classes and of the scarce capabilities, one book;
        # per column of it, the class's share of the mix's GPU demand (0: not in the mix),
        # and the scarce columns (None: nothing scarce is kept).
        self._book: SlotBook | None = None
        self._reserve_share: FloatArray = np.zeros(0)
        self._scarce: BoolArray | None = None
        self._reach: dict[tuple[int, int, int, int, frozenset[str]], int] = {}
        # F(node) under the current mix, valid where its generation matches the snapshot's.
        self._node_frag: FloatArray = np.zeros(0)
        self._node_frag_generation: IntArray = np.zeros(0, dtype=np.int64)
        self._lineage = -1
        self._next_refresh = 1
        self._epoch = 0
        self._cache: dict[tuple[int, int, int], _ShapeScores] = {}

    @property
    def mix(self) -> WorkloadMix | None:
        """The mix scores are computed with now (None before the first request)."""
        return self._mix

    def _shifted(self) -> bool:
        """Whether the recent mix has moved away from the learned one (see shift_tv)."""
        fast = self._fast
        seen = self._learned.seen
        if fast is None or seen < 1024 or seen % self.config.shift_check_every:
            return False
        recent, learned = fast.demand_by_class(), self._learned.demand_by_class()
        tv = 0.5 * sum(abs(recent.get(k, 0.0) - learned.get(k, 0.0)) for k in {*recent, *learned})
        self._shift_votes = self._shift_votes + 1 if tv > self.config.shift_tv else 0
        if self._shift_votes < 2:
            return False
        self._shift_votes = 0
        self._learned.adopt(fast)
        self.shifts += 1
        return True

    def _learn(self, snapshot: Snapshot, request: Request) -> None:
        shape = request.shape
        self._learned.observe(shape)
        if self._fast is not None:
            self._fast.observe(shape)
        if self._shifted():
            self._next_refresh = self._learned.seen
        if snapshot.lineage != self._lineage:
            self._lineage = snapshot.lineage
            self._cache.clear()
            self._mix = None
            self._gap = None  # its tables are per model of the fleet it was built for
            self._reach = {}
        if self._mix is None or self._learned.seen >= self._next_refresh:
            every = self.config.refresh_every
            seen = self._learned.seen
            self._next_refresh = seen * 2 if seen * 2 <= every else (seen // every + 1) * every
            self._mix = self._learned.typical(self.config.coverage)
            self._frag = BlendedFrag(self._mix, snapshot.models, self.config.capacity_weight)
            if self.config.gap_loss_weight:
                previous = self._gap.patterns if self._gap is not None else ()
                per_model = self.config.gap_per_model
                self._gap = _gap_value(self._mix, snapshot, per_model, previous) or self._gap
                self._gap_cpu = _share_cpu(self._mix) if self.config.gap_cpu_aware else 0
            if self.config.pin_weight:
                self._press = model_pressure(self._learned.weights, snapshot)
                full = self.config.pin_full_share
                if full:
                    share = pinned_share(self._learned.weights)
                    scale = min(max(share / full, self.config.pin_floor), 1.0)
                    self._pin_weight = self.config.pin_weight * scale
                self._press_floor = {}
            self._build_reserves(snapshot)
            self._node_frag = np.zeros(snapshot.size)
            self._node_frag_generation = np.full(snapshot.size, -1, dtype=np.int64)
            # Cached scores stay usable under the new mix until rescored (see _scores).
            self._epoch += 1

    def _build_reserves(self, snapshot: Snapshot) -> None:
        """One slot book for the mix's multi-GPU classes (kept when short) and the fleet's
        scarce capabilities (kept always, lightly); None when there is neither."""
        config = self.config
        weights = self._learned.weights
        mix = mix_classes(weights) if config.reserve_margin else {}
        scarce = (
            scarce_classes(weights, snapshot, config.scarce_share)
            if config.scarce_share and config.scarce_weight
            else []
        )
        classes = [*mix, *(c for c in scarce if c not in mix)]
        if not classes:
            self._book, self._reserve_share, self._scarce = None, np.zeros(0), None
            return
        self._book = SlotBook(classes, snapshot)
        self._reserve_share = np.array([mix.get(c, 0.0) for c in classes])
        self._scarce = self._book.column(scarce) if scarce else None

    def _score_rows(
        self, snapshot: Snapshot, rows: IntArray, request: Request
    ) -> tuple[FloatArray, IntArray]:
        """Per row, the fragmentation drop (look-ahead loss included) of the best placement
        and, for a share, the GPU that gets it (best quantised score, lowest index on ties).
        Depends only on the request's CPU and GPU ask, never on the models it allows, and
        on the row's free CPU, free GPUs and model alone: when many rows are scored at once
        (a shape's first decision, a mix refresh), nodes in the same state are scored once."""
        if len(rows) >= DISTINCT_FROM:
            first, inverse = _distinct_states(snapshot, rows)
            if len(first) < len(rows):
                drop, gpu = self._score_distinct(snapshot, rows[first], request)
                return drop[inverse], gpu[inverse]
        return self._score_distinct(snapshot, rows, request)

    def _score_distinct(
        self, snapshot: Snapshot, rows: IntArray, request: Request
    ) -> tuple[FloatArray, IntArray]:
        cpu = snapshot.cpu_free[rows]
        g = snapshot.gpu_free[rows]
        model = snapshot.model_idx[rows]
        cpu_after = cpu - request.cpu_milli
        d, w = g.shape
        if request.is_sharing:
            m = request.gpu_milli
            # GPUs of a node with the same free milli leave the same node behind: score each
            # distinct (node, free milli) once, on its lowest-index GPU (``first``), and give
            # every GPU the score of its representative (``rep``).
            same = g[:, :, None] == g[:, None, :]
            rep = same.argmax(axis=2)
            fits = g >= m
            first = (rep == np.arange(w)) & fits
            ur, uc = np.nonzero(first)
            slot = np.zeros((d, w), dtype=np.int64)
            slot[ur, uc] = np.arange(len(ur))
            slot = slot[np.arange(d)[:, None], rep]
            after = g[ur]
            after[np.arange(len(ur)), uc] -= m
            before, f_after = self._frag_before_after(
                snapshot, rows, cpu_after[ur], after, model[ur]
            )
            drop = before[ur] - f_after
            if self._gap is not None:
                if self._gap_cpu:
                    loss = self._gap.loss(
                        model[ur],
                        g[ur, uc],
                        m,
                        cpu[ur] >= self._gap_cpu,
                        cpu_after[ur] >= self._gap_cpu,
                    )
                else:
                    loss = self._gap.loss(model[ur], g[ur, uc], m)
                drop -= self.config.gap_loss_weight * MILLI * loss
            s = np.where(fits, self._quantise(drop)[slot], -1.0)
            best = s.argmax(axis=1)
            drops = np.where(fits, drop[slot], -np.inf)
            return drops[np.arange(d), best], best.astype(np.int64)
        if request.gpu_count:
            full = g == MILLI
            take = full & (np.cumsum(full, axis=1) <= request.gpu_count)
            g = np.where(take, 0, g)
        before, f_after = self._frag_before_after(snapshot, rows, cpu_after, g, model)
        drop = before - f_after
        return drop, np.zeros(d, dtype=np.int64)

    def _pin_penalty(
        self, snapshot: Snapshot, request: Request, rows: IntArray
    ) -> FloatArray | None:
        """pin_weight x the request's milli-GPU x how much more pinned requests press on each
        row's model than on the least pressed model the request may use (None without pins)."""
        if not self.config.pin_weight or not request.gpu_count or not np.count_nonzero(self._press):
            return None
        floor = self._press_floor.get(request.gpu_models)
        if floor is None:
            usable = snapshot.model_mask(request) & (snapshot.gpu_count > 0)
            used_models = np.unique(snapshot.model_idx[usable])
            floor = float(self._press[used_models].min()) if len(used_models) else 0.0
            self._press_floor[request.gpu_models] = floor
        extra = np.maximum(self._press[snapshot.model_idx[rows]] - floor, 0.0)
        out: FloatArray = self._pin_weight * request.gpu_total_milli * extra
        return out

    def _slots_taken(
        self, snapshot: Snapshot, request: Request, rows: IntArray, gpu: IntArray
    ) -> tuple[FloatArray | None, FloatArray | None]:
        """Per row, the GPUs' worth of slots placing the request there takes: of the scarce
        capabilities (None for a request that itself fits on no more nodes than a scarce
        class does), and of the mix's multi-GPU classes that are short now (None when none
        is; ``_with_reserve``)."""
        book = self._book
        if book is None:
            return None, None
        scarce = self._scarce
        if scarce is not None and self._crowds_scarce(snapshot, request):
            if not book.left(snapshot)[scarce].sum():
                # Nothing left to keep: idle until the next refresh of the mix rebuilds it.
                self._scarce = scarce = None
        else:
            scarce = None
        short = (
            book.short(snapshot, self._reserve_share, self.config.reserve_margin)
            if np.count_nonzero(self._reserve_share)
            else None
        )
        if short is not None and not np.count_nonzero(short):
            short = None
        groups = {name: g for name, g in (("scarce", scarce), ("short", short)) if g is not None}
        if not groups:
            return None, None
        taken = book.taken(snapshot, rows, request, gpu, list(groups.values()))
        by_name = dict(zip(groups, taken, strict=True))
        return by_name.get("scarce"), by_name.get("short")

    def _crowds_scarce(self, snapshot: Snapshot, request: Request) -> bool:
        """Whether the request fits on more nodes than a scarce capability (reach cached per
        request shape and memory)."""
        key = (*request.shape[:3], request.memory_mib, request.gpu_models)
        reach = self._reach.get(key)
        if reach is None:
            reach = request_reach(snapshot, request)
            self._reach[key] = reach
        return reach > self.config.scarce_share * snapshot.size

    def _frag_before_after(
        self, snapshot: Snapshot, rows: IntArray, cpu: IntArray, gpu: IntArray, model: IntArray
    ) -> tuple[FloatArray, FloatArray]:
        """F of ``rows`` as they are (cached per node generation), and F of the after-states
        given as (cpu, gpu, model): one call of the fragment function for both, since most
        decisions score a handful of rows and the call's fixed cost dominates."""
        assert self._frag is not None
        generation = snapshot.node_generation
        stale = rows[self._node_frag_generation[rows] != generation[rows]]
        if len(stale):
            k = len(stale)
            f = self._frag(
                np.concatenate((snapshot.cpu_free[stale], cpu)),
                np.concatenate((snapshot.gpu_free[stale], gpu)),
                np.concatenate((snapshot.model_idx[stale], model)),
            )
            self._node_frag[stale] = f[:k]
            self._node_frag_generation[stale] = generation[stale]
            after: FloatArray = f[k:]
        else:
            after = self._frag(cpu, gpu, model)
        before: FloatArray = self._node_frag[rows]
        return before, after

    def _quantise(self, drop: FloatArray) -> FloatArray:
        # Capped below exp's overflow (e^700 already floors the score to 0): cheaper than
        # silencing the overflow with np.errstate on every decision.
        x = np.minimum(-drop / self.config.scale, 700.0)
        out: FloatArray = np.floor(100.0 / (1.0 + np.exp(x)))
        return out

    def _scores(self, snapshot: Snapshot, request: Request, feasible: BoolArray) -> _ShapeScores:
        """Scores of the request's shape, current on every feasible row.

        Only feasible rows are (re)scored: rows whose node changed since they were scored,
        and, after a mix refresh, up to ``rescore_budget`` rows still scored under an older
        mix (their scores stay valid for their node's state, only the mix aged). Once every
        feasible row is current, rows not feasible and still aged are forgotten, to be scored
        afresh (as changed rows) when they become feasible: until the next refresh, decisions
        need not look for aged rows.
        """
        # Requests that differ only in the models they allow share their row scores (the
        # models decide feasibility and the pin penalty, applied per decision).
        key = (request.cpu_milli, request.gpu_milli, request.gpu_count)
        entry = self._cache.get(key)
        if entry is None:
            n = snapshot.size
            entry = _ShapeScores(
                generation=np.full(n, -1, dtype=np.int64),
                epoch=np.full(n, self._epoch, dtype=np.int64),
                drop=np.zeros(n),
                score=np.zeros(n, dtype=np.int64),
                gpu=np.zeros(n, dtype=np.int64),
                current=self._epoch,
            )
            self._cache[key] = entry
        changed = feasible & (entry.generation != snapshot.node_generation)
        rows = changed.nonzero()[0]
        if entry.current != self._epoch:
            old = entry.epoch != self._epoch
            aged = (feasible & ~changed & old).nonzero()[0]
            budget = max(self.config.rescore_budget - len(rows), 0)
            if len(aged):
                rows = np.union1d(rows, aged[:budget])
            if len(aged) <= budget:
                entry.generation[old & ~feasible] = -1
                entry.current = self._epoch
        if len(rows):
            drop, gpu = self._score_rows(snapshot, rows, request)
            entry.drop[rows] = drop
            entry.score[rows] = np.maximum(self._quantise(drop), 0).astype(np.int64)
            entry.gpu[rows] = gpu
            entry.generation[rows] = snapshot.node_generation[rows]
            entry.epoch[rows] = self._epoch
        return entry

    def place(self, snapshot: Snapshot, request: Request) -> Decision:
        self._learn(snapshot, request)
        feasible = snapshot.feasible(request)
        rows = feasible.nonzero()[0]
        if not len(rows):
            return snapshot.fail(request)
        entry = self._scores(snapshot, request, feasible)
        gpu = entry.gpu[rows]
        scarce_taken, reserve_taken = self._slots_taken(snapshot, request, rows, gpu)
        penalty = self._pin_penalty(snapshot, request, rows)
        if scarce_taken is not None:
            scarce = self.config.scarce_weight * MILLI * scarce_taken
            penalty = scarce if penalty is None else penalty + scarce
        score = entry.score[rows]
        if penalty is not None and len(hit := penalty.nonzero()[0]):
            # Only the penalised rows are quantised again.
            score = score.copy()
            lowered = self._quantise(entry.drop[rows[hit]] - penalty[hit])
            score[hit] = np.maximum(lowered, 0).astype(np.int64)
        keys = score if reserve_taken is None else _with_reserve(score, reserve_taken)
        node = self._tie.pick_among(snapshot, rows, keys)
        if request.is_sharing:
            gpus: tuple[int, ...] = (int(entry.gpu[node]),)
        else:
            gpus = snapshot.tightest_gpus(node, request)
        at = int(rows.searchsorted(node))
        return snapshot.decide(node, gpus, request, float(score[at]))


def _distinct_states(snapshot: Snapshot, rows: IntArray) -> tuple[IntArray, IntArray]:
    """The first row of each distinct (free CPU, model, free milli per GPU) among ``rows``,
    and for every row the index of its state in that list."""
    state = np.empty((len(rows), snapshot.gpu_free.shape[1] + 2), dtype=np.int64)
    state[:, 0] = snapshot.cpu_free[rows]
    state[:, 1] = snapshot.model_idx[rows]
    state[:, 2:] = snapshot.gpu_free[rows]
    # One opaque value per row: unique over bytes is one sort, where axis=0 is several.
    keys = state.view(np.dtype((np.void, state.dtype.itemsize * state.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _with_reserve(score: IntArray, taken: FloatArray) -> IntArray:
    """The keys to pick rows by: their scores, unless a multi-GPU class is short of slots;
    then rows whose use takes fewer GPUs' worth of its slots come first, the score breaking
    ties."""
    if not np.count_nonzero(taken):
        return score
    level = np.round(taken).astype(np.int64)
    out: IntArray = score + 101 * (level.max() - level)
    return out


def _share_cpu(mix: WorkloadMix) -> int:
    """The mean CPU of the mix's GPU shares, weighted by frequency (0 without shares)."""
    share = (mix.count == 1) & (mix.milli > 0) & (mix.milli < MILLI)
    if not share.any():
        return 0
    w = mix.weight[share]
    return int((mix.cpu[share] * w).sum() / w.sum())


def _gap_value(
    mix: WorkloadMix, snapshot: Snapshot, per_model: bool, start: Sequence[Pattern] = ()
) -> ModelGapValue | None:
    """Pattern values of the mix's GPU shares per GPU model of the fleet (None when the mix
    has no shares). A share type's weight goes to the models it may use, in proportion to
    their GPUs: to those only when ``per_model``, else to every model."""
    share = (mix.count == 1) & (mix.milli > 0) & (mix.milli < MILLI)
    if not share.any():
        return None
    sizes, inverse = np.unique(mix.milli[share], return_inverse=True)
    gpus = np.bincount(
        snapshot.model_idx, weights=snapshot.gpu_count, minlength=len(snapshot.models)
    )
    if per_model:
        allowed = mix.allowed(snapshot.models)[share] * gpus[None, :]
    else:
        allowed = np.ones((int(share.sum()), len(snapshot.models))) * gpus[None, :]
    reach = allowed.sum(axis=1, keepdims=True)
    # (types x models): the share of each type's arrivals each model can expect.
    flow = np.divide(allowed, reach, out=np.zeros_like(allowed), where=reach > 0)
    flow *= mix.weight[share][:, None]
    counts = np.zeros((len(snapshot.models), len(sizes)))
    np.add.at(counts.T, inverse.reshape(-1), flow)
    return ModelGapValue(sizes.astype(np.int64), counts, start)
