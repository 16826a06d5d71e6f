"""Loading the Alibaba "openb" trace (node and pod CSV lists) and the paper's tuning step.

Bad rows (missing columns, values that are not non-negative integers) are reported with
their line number and skipped, never fatal.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stratum.scheduling.request import MILLI, Request
from stratum.scheduling.snapshot import NodeSpec

NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")


class TraceError(ValueError):
    """The file cannot be read as a trace at all (missing file or header)."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """A skipped row: its 1-based line number in the file and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class NodeList:
    nodes: tuple[NodeSpec, ...]
    bad_rows: tuple[BadRow, ...]

    @property
    def gpu_capacity_milli(self) -> int:
        return sum(n.gpu_count for n in self.nodes) * MILLI


@dataclass(frozen=True, slots=True)
class PodList:
    pods: tuple[Request, ...]
    bad_rows: tuple[BadRow, ...]
    #: per pod, its phase (optional ``phase`` column; empty when the list has none): the
    #: tuning step shuffles within a phase and keeps phases in order, so that a list can
    #: say "this mix first, then that one" (a mix shift)
    phases: tuple[int, ...] = ()

    @property
    def gpu_request_milli(self) -> int:
        return sum(p.gpu_total_milli for p in self.pods)


def _rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise TraceError(f"trace file not found: {path}")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise TraceError(f"{path}: empty file")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise TraceError(f"{path}: header lacks column(s) {', '.join(missing)}")
        for values in reader:
            # The reader's line_num counts physical lines read so far: the current row's line.
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            row = dict(zip(header, values, strict=False))
            if len(values) < len(header):
                row["__short__"] = str(len(values))
            yield line, row


def _int(row: dict[str, str], column: str) -> int:
    raw = row.get(column)
    if raw is None:
        raise ValueError(f"missing column {column}")
    raw = raw.strip()
    if raw == "":
        raise ValueError(f"empty {column}")
    try:
        value = int(raw)
    except ValueError:
        try:
            as_float = float(raw)
        except ValueError:
            raise ValueError(f"{column}={raw!r} is not a number") from None
        if not as_float.is_integer():
            raise ValueError(f"{column}={raw!r} is not an integer") from None
        value = int(as_float)
    if value < 0:
        raise ValueError(f"{column}={value} is negative")
    return value


def load_nodes(path: str | Path) -> NodeList:
    """Read a node list (``sn,cpu_milli,memory_mib,gpu,model``)."""
    p = Path(path)
    nodes: list[NodeSpec] = []
    bad: list[BadRow] = []
    for line, row in _rows(p, NODE_COLUMNS):
        try:
            name = row.get("sn", "").strip()
            if not name:
                raise ValueError("empty sn")
            gpus = _int(row, "gpu")
            model = (row.get("model") or "").strip()
            if gpus > 0 and not model:
                raise ValueError("a node with GPUs needs a model")
            nodes.append(
                NodeSpec(name, _int(row, "cpu_milli"), _int(row, "memory_mib"), gpus, model)
            )
        except ValueError as e:
            bad.append(BadRow(str(p), line, str(e)))
    if not nodes:
        raise TraceError(f"{p}: no valid node rows")
    return NodeList(tuple(nodes), tuple(bad))


def load_pods(path: str | Path) -> PodList:
    """Read a pod list (``name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,phase,...]``)."""
    p = Path(path)
    pods: list[Request] = []
    phases: list[int] = []
    has_phase = False
    bad: list[BadRow] = []
    for line, row in _rows(p, POD_COLUMNS):
        try:
            phase = 0
            if (row.get("phase") or "").strip():
                phase = _int(row, "phase")
                has_phase = True
            count = _int(row, "num_gpu")
            milli = _int(row, "gpu_milli")
            if count == 0:
                milli = 0
            elif milli == 0:
                raise ValueError(f"num_gpu={count} with gpu_milli=0")
            elif milli > MILLI:
                raise ValueError(f"gpu_milli={milli} exceeds {MILLI}")
            elif milli < MILLI and count > 1:
                raise ValueError(f"a GPU share (gpu_milli={milli}) with num_gpu={count}")
            spec = (row.get("gpu_spec") or "").strip()
            if spec.lower() == "nan":
                spec = ""
            models = frozenset(s.strip() for s in spec.split("|") if s.strip())
            pods.append(
                Request(
                    cpu_milli=_int(row, "cpu_milli"),
                    memory_mib=_int(row, "memory_mib"),
                    gpu_count=count,
                    gpu_milli=milli,
                    gpu_models=models,
                    name=(row.get("name") or "").strip(),
                )
            )
            phases.append(phase)
        except ValueError as e:
            bad.append(BadRow(str(p), line, str(e)))
    if not pods:
        raise TraceError(f"{p}: no valid pod rows")
    return PodList(tuple(pods), tuple(bad), tuple(phases) if has_phase else ())


def tune(
    pods: Sequence[Request],
    capacity_milli: int,
    ratio: float,
    seed: int,
    phases: Sequence[int] = (),
) -> list[int]:
    """The paper's arrival order for one seed: shuffle the list, then append random copies
    until the summed GPU request reaches ``ratio`` of capacity, or cut the shuffled list where
    it first reaches it (dropping the rest, a random subset since the order is random).

    With ``phases`` (one per pod), each phase is shuffled on its own and the phases follow
    each other in increasing order; copies appended are drawn from the last phase. Without,
    the order is exactly the paper's.

    Returns indices into ``pods``.
    """
    if not pods:
        return []
    rng = np.random.default_rng(seed)
    if phases:
        if len(phases) != len(pods):
            raise ValueError(f"{len(phases)} phases for {len(pods)} pods")
        phase = np.asarray(phases, dtype=np.int64)
        shuffled = rng.permutation(len(pods))
        # A stable sort by phase of a random permutation shuffles within each phase.
        order: list[int] = shuffled[np.argsort(phase[shuffled], kind="stable")].tolist()
        pool = np.flatnonzero(phase == phase.max())
    else:
        order = rng.permutation(len(pods)).tolist()
        pool = np.arange(len(pods))
    demand = np.array([p.gpu_total_milli for p in pods], dtype=np.int64)
    target = ratio * capacity_milli
    total = int(demand.sum())
    if total >= target:
        cumulative = np.cumsum(demand[order])
        cut = int(np.searchsorted(cumulative, target, side="left")) + 1
        return order[:cut]
    if not (demand > 0).any():
        return order
    while total < target:
        extra = pool[rng.integers(0, len(pool), size=256)].tolist()
        for i in extra:
            order.append(i)
            total += int(demand[i])
            if total >= target:
                break
    return order
