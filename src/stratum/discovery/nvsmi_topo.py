"""Parser of `nvidia-smi topo -m`: the GPU/NIC link matrix, CPU and NUMA affinity, NIC names.

The matrix comes space-aligned or tab-separated, with or without the "GPU NUMA ID" column,
with NIC rows named NIC<n> (and a "NIC Legend" giving mlx5_<n>) or named after the device
(older drivers print mlx5_0 directly). Rows are matched by name, so their order does not
matter; a row that is missing, short, or disagrees with its mirror is an error.

Grace systems (GH200, GB200) list several NUMA nodes as a GPU's affinity (`0,3-9,11-17`: the
CPU's node and other GPUs' memory nodes) and give the GPU's own memory node under "GPU NUMA
ID"; both are read. An affinity column the parser does not know is skipped with a note.
"""

from __future__ import annotations

import re

from stratum.core.cpulist import CpuListError, parse_cpulist
from stratum.core.topology import Link, TopologyError
from stratum.discovery.sources import Facts, GpuFact, LinkFact, NicFact, Note, ParseError, Text

_RDMA_NAME = re.compile(r"^(mlx[45]_|bnxt_re|irdma|efa_|hfi1_|qedr|rxe|ionic_|erdma)")
_LEGEND = re.compile(r"^\s*(NIC[0-9]+)\s*:\s*(\S+)\s*$")
_DEVICE = re.compile(r"^(GPU[0-9]+|NIC[0-9]+|[A-Za-z][\w.-]*_[\w.-]+)$")
_P2P_TOKENS = {"X", "OK", "CNS", "GNS", "TNS", "NS", "DR", "U"}
_CLASS_LIKE = re.compile(r"^(X|NV[0-9]+|PIX|PXB|PHB|NODE|SYS|SOC)$")
_AFFINITY_LIKE = re.compile(r"^([0-9][0-9,\-]*|N/A)$")
MAX_NUMA_NODE = 1023  # the wire's bound on a NUMA node id
_AFFINITY_COLUMNS = ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")
_EXPECTED_CLASSES = "X, NV<n>, PIX, PXB, PHB, NODE or SYS"


def find_header(text: Text) -> int | None:
    """Index of the matrix header line (columns GPU0 ... and 'CPU Affinity'), if any."""
    for i, line in enumerate(text.lines):
        cut = line.find("CPU Affinity")
        devices = (line if cut < 0 else line[:cut]).split()
        if not devices or devices[0] != "GPU0":
            continue
        # The first row may be any device's (rows can come in any order): its X must sit
        # in its own column.
        row = next((t for t in text.lines[i + 1 :] if t.strip()), "").split()
        if not row or row[0] not in devices or len(row) <= devices.index(row[0]) + 1:
            continue
        if row[devices.index(row[0]) + 1] != "X":
            continue
        if cut >= 0 or any(t not in _P2P_TOKENS for t in row[1:]):
            return i
    return None


def parse_topo_matrix(text: Text) -> Facts:
    header_at = find_header(text)
    if header_at is None:
        raise ParseError(
            text.source,
            text.first_line,
            "an `nvidia-smi topo -m` matrix: a header line starting with GPU0 and a row 'GPU0 X'",
        )
    header = text.lines[header_at]
    cut = header.find("CPU Affinity")
    device_part = header if cut < 0 else header[:cut]
    devices = device_part.split()
    extra = [] if cut < 0 else [c for c in re.split(r"\t+|\s{2,}", header[cut:].strip()) if c]
    for name in devices:
        if not _DEVICE.match(name):
            raise ParseError(
                text.source,
                text.line_no(header_at),
                "device columns named GPU<n>, NIC<n> or an RDMA device name",
                name,
            )
    if len(set(devices)) != len(devices):
        raise ParseError(text.source, text.line_no(header_at), "each device column once", header)
    n = len(devices)
    notes: list[Note] = []
    unknown = [c for c in extra if c not in _AFFINITY_COLUMNS]
    if unknown:
        notes.append(
            Note(
                text.source,
                f"unknown column(s) {', '.join(unknown)} in the topo -m header; their "
                "values are skipped",
                text.line_no(header_at),
            )
        )

    rows: dict[str, tuple[int, list[str]]] = {}
    legend: dict[str, str] = {}
    end = len(text.lines)
    i = header_at + 1
    while i < end:
        line = text.lines[i]
        stripped = line.strip()
        if not stripped:
            if len(rows) == n:
                break
            i += 1
            continue
        if stripped.startswith("Legend"):
            break
        tokens = stripped.split()
        if tokens[0] not in devices:
            break
        if tokens[0] in rows:
            raise ParseError(
                text.source,
                text.line_no(i),
                f"one row for {tokens[0]}",
                "a second row",
            )
        rows[tokens[0]] = (i, tokens[1:])
        i += 1
    for j in range(i, end):
        match = _LEGEND.match(text.lines[j])
        if match:
            legend[match[1]] = match[2]
    missing = [d for d in devices if d not in rows]
    if missing:
        last = max((at for at, _ in rows.values()), default=header_at)
        raise ParseError(
            text.source,
            text.line_no(last) + 1,
            f"a row for each of the {n} devices in the header; missing {', '.join(missing)} "
            "(is the output truncated?)",
        )

    classes: dict[tuple[str, str], Link] = {}
    gpu_facts: list[GpuFact] = []
    for name in devices:
        at, tokens = rows[name]
        leading = 0
        while leading < len(tokens) and _CLASS_LIKE.match(tokens[leading]):
            leading += 1
        if leading < n and (leading == len(tokens) or _AFFINITY_LIKE.match(tokens[leading])):
            # The row ran out of classes where affinity columns begin: a short row.
            tokens = tokens[:leading]
        if len(tokens) < n:
            raise ParseError(
                text.source,
                text.line_no(at),
                f"{n} link classes in row {name} (one per device column: the matrix must be "
                f"square), got {len(tokens)}",
                text.lines[at].strip(),
            )
        for col, value in zip(devices, tokens[:n], strict=True):
            try:
                link = Link.parse(value)
            except TopologyError:
                raise ParseError(
                    text.source,
                    text.line_no(at),
                    f"a link class ({_EXPECTED_CLASSES}) for {name} to {col}",
                    value,
                ) from None
            if (col == name) != (link.kind == "X"):
                raise ParseError(
                    text.source,
                    text.line_no(at),
                    f"X exactly on the diagonal (row {name}, column {col})",
                    value,
                )
            classes[(name, col)] = link
        if name.startswith("GPU"):
            gpu_facts.append(_gpu_fact(text, at, name, n, extra, notes))
    for pos, a in enumerate(devices):
        for b in devices[pos + 1 :]:
            if classes[(a, b)] != classes[(b, a)]:
                raise ParseError(
                    text.source,
                    text.line_no(rows[b][0]),
                    f"the same class both ways: {a}->{b} is {classes[(a, b)]}",
                    f"{b}->{a} {classes[(b, a)]}",
                )
    names = [legend.get(d, d) for d in devices]
    if len(set(names)) != len(names):
        first = next((j for j in range(i, end) if _LEGEND.match(text.lines[j])), header_at)
        raise ParseError(
            text.source, text.line_no(first), "distinct NIC names in the NIC legend", str(legend)
        )
    rename = dict(zip(devices, names, strict=True))
    nic_facts: list[NicFact] = []
    for d in devices:
        if d.startswith("GPU"):
            continue
        real = rename[d]
        rdma = True if _RDMA_NAME.match(real) else None
        if rdma is None:
            notes.append(
                Note(
                    text.source,
                    f"{real}: no NIC legend names the device, so whether "
                    "it does RDMA is unknown; reported as non-RDMA",
                )
            )
        nic_facts.append(NicFact(text.source, real, rdma=rdma))
    matrix = tuple(tuple(str(classes[(a, b)]) for b in devices) for a in devices)
    return Facts(
        gpus=tuple(gpu_facts),
        nics=tuple(nic_facts),
        links=(LinkFact(text.source, tuple(names), matrix),),
        notes=tuple(notes),
        sources=(text.source,),
    )


def _affinity_values(line: str, n: int, columns: list[str]) -> list[str] | None:
    """The row's values under the affinity columns, by column; None when they cannot be told.

    Whitespace-split values line up with the columns when there are as many as columns.
    Tab-separated rows mark an empty value with an empty field (Grace prints no CPU
    affinity for GPUs whose node has no CPUs), and nvidia-smi puts an extra tab after the
    NUMA affinity, so fields are taken in order with that one empty field dropped.
    """
    tokens = line.split()[1 + n :]
    if len(tokens) == len(columns):
        return tokens
    if "\t" not in line:
        return None
    fields = [f.strip() for f in line.rstrip().split("\t")][1 + n :]
    if "NUMA Affinity" in columns:
        at = columns.index("NUMA Affinity") + 1
        if len(fields) > len(columns) and at < len(fields) and not fields[at]:
            del fields[at]
    if len(fields) != len(columns):
        return None
    return fields


def _gpu_fact(
    text: Text, at: int, name: str, n: int, columns: list[str], notes: list[Note]
) -> GpuFact:
    index = int(name[3:])
    cpus: frozenset[int] | None = None
    numa: int | None = None
    candidates: frozenset[int] | None = None
    memory_node: int | None = None
    if not columns:
        return GpuFact(text.source, index=index)
    values = _affinity_values(text.lines[at], n, columns)
    if values is None:
        notes.append(
            Note(
                text.source,
                f"{name}: the values after the link classes do not line up with the columns "
                f"{', '.join(columns)}; affinity left unknown",
                text.line_no(at),
            )
        )
        return GpuFact(text.source, index=index)
    for column, value in zip(columns, values, strict=True):
        if not value or value == "N/A" or column not in _AFFINITY_COLUMNS:
            continue
        try:
            parsed = parse_cpulist(value)
        except CpuListError:
            raise ParseError(
                text.source,
                text.line_no(at),
                f"a {'CPU list' if column == 'CPU Affinity' else 'NUMA node list'} or N/A "
                f"under {column} for {name}",
                value,
            ) from None
        if column != "CPU Affinity" and max(parsed, default=0) > MAX_NUMA_NODE:
            raise ParseError(
                text.source,
                text.line_no(at),
                f"NUMA node numbers from 0 to {MAX_NUMA_NODE} under {column} for {name}",
                value,
            )
        if column == "CPU Affinity":
            cpus = parsed
        elif column == "NUMA Affinity":
            candidates = parsed
            numa = min(parsed) if parsed else None
        elif len(parsed) == 1:
            memory_node = next(iter(parsed))
        else:
            raise ParseError(
                text.source, text.line_no(at), f"one NUMA node number under {column}", value
            )
    return GpuFact(
        text.source,
        index=index,
        numa_node=numa,
        cpu_affinity=cpus,
        numa_candidates=candidates if candidates and len(candidates) > 1 else None,
        memory_numa_node=memory_node,
    )
