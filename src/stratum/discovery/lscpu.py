"""Parsers of `lscpu` (the summary) and `lscpu -p` (one line per logical CPU).

lscpu translates its labels; Stratum reads the English ones (`LC_ALL=C lscpu`, which live
discovery always runs). A summary in another language is refused with that advice rather
than half-read. `lscpu -p` is locale-independent and preferred when both are present.
"""

from __future__ import annotations

import re

from stratum.core.cpulist import CpuListError, parse_cpulist
from stratum.discovery.sources import CpuFact, Facts, NumaFact, ParseError, Text

_KV = re.compile(r"^\s*([^:]+?):\s*(.*?)\s*$")
_NUMA_CPUS = re.compile(r"^NUMA node(\d+) CPU\(s\)$")
_ARCHES = ("x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "riscv64", "i686", "armv7l")
_ENGLISH_KEYS = (
    "Architecture",
    "CPU(s)",
    "Model name",
    "Socket(s)",
    "NUMA node(s)",
    "Thread(s) per core",
    "Core(s) per socket",
    "Vendor ID",
)


def is_lscpu(text: Text) -> bool:
    keys = {m[1].strip() for line in text.lines if (m := _KV.match(line))}
    if any(k in keys for k in _ENGLISH_KEYS) or any(_NUMA_CPUS.match(k) for k in keys):
        return True
    return _foreign_arch_line(text) is not None


def _foreign_arch_line(text: Text) -> int | None:
    """The architecture line of an lscpu summary whose labels are not English, if any."""
    keys = [m[1] for line in text.lines if (m := _KV.match(line))]
    if not any("CPU" in k or "NUMA" in k for k in keys):
        return None  # an "arch: x86_64" line in some other report is not lscpu
    for i, line in enumerate(text.lines):
        match = _KV.match(line)
        if match and match[2] in _ARCHES and match[1].strip() not in _ENGLISH_KEYS:
            return i
    return None


def _int(text: Text, i: int, key: str, value: str) -> int:
    if not value.isdigit():
        raise ParseError(text.source, text.line_no(i), f"a whole number after '{key}:'", value)
    return int(value)


def parse_lscpu(text: Text) -> Facts:
    values: dict[str, tuple[int, str]] = {}
    numa: list[NumaFact] = []
    for i, line in enumerate(text.lines):
        match = _KV.match(line)
        if not match:
            continue
        key, value = match[1].strip(), match[2]
        values.setdefault(key, (i, value))
        node = _NUMA_CPUS.match(key)
        if node:
            try:
                cpus = parse_cpulist(value)
            except CpuListError as exc:
                raise ParseError(
                    text.source, text.line_no(i), f"a CPU list for NUMA node {node[1]}", value
                ) from exc
            numa.append(NumaFact(text.source, int(node[1]), cpus=cpus))
    at = _foreign_arch_line(text)
    if at is not None or (not any(k in values for k in _ENGLISH_KEYS) and not numa):
        raise ParseError(
            text.source,
            text.line_no(at) if at is not None else text.first_line,
            "lscpu output with English labels (run `LC_ALL=C lscpu`, or `lscpu -p`, which "
            "is the same in every language)",
            text.lines[at].strip() if at is not None else None,
        )

    def number(key: str) -> int | None:
        if key not in values:
            return None
        i, value = values[key]
        return _int(text, i, key, value)

    count = number("NUMA node(s)")
    if count is not None and numa and count != len(numa):
        i, _ = values["NUMA node(s)"]
        raise ParseError(
            text.source,
            text.line_no(i),
            f"{count} 'NUMA nodeN CPU(s)' lines as 'NUMA node(s)' says",
            f"{len(numa)} (is the output truncated?)",
        )
    cpu = CpuFact(
        text.source,
        architecture=values.get("Architecture", (0, None))[1],
        model_name=values.get("Model name", (0, None))[1],
        vendor=values.get("Vendor ID", (0, None))[1],
        logical_cpus=number("CPU(s)"),
        sockets=number("Socket(s)"),
        cores_per_socket=number("Core(s) per socket") or number("Core(s) per cluster"),
        threads_per_core=number("Thread(s) per core"),
        numa_nodes=count,
    )
    return Facts(cpus=(cpu,), numa=tuple(numa), sources=(text.source,))


_P_ROW = re.compile(r"^[0-9]+(,[0-9A-Za-z:.]*)+$")


def is_lscpu_parsable(text: Text) -> bool:
    rows = [line for line in text.lines if line.strip() and not line.startswith("#")]
    has_header = any(line.startswith("# CPU,") for line in text.lines)
    return (
        bool(rows)
        and all(_P_ROW.match(r.strip()) for r in rows)
        and (has_header or (len(rows) >= 1 and rows[0].count(",") >= 3))
    )


def parse_lscpu_parsable(text: Text) -> Facts:
    columns = ["CPU", "Core", "Socket", "Node"]  # lscpu -p's default order
    for line in text.lines:
        if line.startswith("# CPU,"):
            columns = [c.strip() for c in line[2:].split(",")]
    try:
        at = {name: columns.index(name) for name in ("CPU", "Core", "Socket")}
    except ValueError:
        raise ParseError(
            text.source, text.first_line, "lscpu -p columns CPU, Core and Socket", ",".join(columns)
        ) from None
    node_at = columns.index("Node") if "Node" in columns else None
    per_cpu: list[tuple[int, int, int, int]] = []
    for i, line in enumerate(text.lines):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.strip().split(",")
        if len(fields) < len(columns) - 1 or not _P_ROW.match(line.strip()):
            raise ParseError(
                text.source,
                text.line_no(i),
                f"{len(columns)} comma-separated columns ({','.join(columns)})",
                line.strip(),
            )
        try:
            cpu, core, socket = (int(fields[at[k]]) for k in ("CPU", "Core", "Socket"))
            node_text = fields[node_at] if node_at is not None and node_at < len(fields) else ""
            node = int(node_text) if node_text else -1
        except ValueError:
            raise ParseError(
                text.source,
                text.line_no(i),
                "numbers in the CPU, Core, Socket and Node columns",
                line.strip(),
            ) from None
        per_cpu.append((cpu, core, socket, node))
    if not per_cpu:
        raise ParseError(text.source, text.first_line, "one line per logical CPU")
    nodes: dict[int, set[int]] = {}
    for cpu, _, _, node in per_cpu:
        if node >= 0:
            nodes.setdefault(node, set()).add(cpu)
    sockets = {s for _, _, s, _ in per_cpu}
    cores = {(s, c) for _, c, s, _ in per_cpu}
    threads = max(1, len(per_cpu) // max(1, len(cores)))
    fact = CpuFact(
        text.source,
        logical_cpus=len(per_cpu),
        sockets=len(sockets),
        cores_per_socket=len(cores) // max(1, len(sockets)),
        threads_per_core=threads,
        numa_nodes=len(nodes) or None,
        per_cpu=tuple(per_cpu),
    )
    numa = tuple(NumaFact(text.source, n, cpus=frozenset(c)) for n, c in sorted(nodes.items()))
    return Facts(cpus=(fact,), numa=numa, sources=(text.source,))
