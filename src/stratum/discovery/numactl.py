"""Parser of `numactl -H`: NUMA nodes, their CPUs and memory, and the distance table.

Node ids need not be contiguous (POWER9 prints 0, 8 and 252-255); nodes without CPUs hold
HBM or GPU memory. A node announced by "available:" but missing below is an error.
"""

from __future__ import annotations

import re

from stratum.core.cpulist import CpuListError, parse_cpulist
from stratum.discovery.sources import Facts, NumaFact, ParseError, Text

_AVAILABLE = re.compile(r"^available:\s*(\d+) nodes? \(([^)]*)\)\s*$")
_CPUS = re.compile(r"^node (\d+) cpus:\s*(.*?)\s*$")
_SIZE = re.compile(r"^node (\d+) size:\s*(\d+) (MB|kB|GB)\s*$")


def is_numactl(text: Text) -> bool:
    return any(_AVAILABLE.match(line.strip()) for line in text.lines)


def parse_numactl(text: Text) -> Facts:
    announced: set[int] | None = None
    announced_at = 0
    cpus: dict[int, frozenset[int]] = {}
    sizes: dict[int, float] = {}
    distances: dict[int, tuple[tuple[int, int], ...]] = {}
    header: list[int] | None = None
    for i, raw in enumerate(text.lines):
        line = raw.strip()
        if not line:
            continue
        if match := _AVAILABLE.match(line):
            try:
                announced = set(parse_cpulist(match[2]))
            except CpuListError as exc:
                raise ParseError(
                    text.source, text.line_no(i), "a node list like (0-3)", match[2]
                ) from exc
            if len(announced) != int(match[1]):
                raise ParseError(
                    text.source, text.line_no(i), f"{match[1]} node ids in the list", match[2]
                )
            announced_at = i
        elif match := _CPUS.match(line):
            ids = match[2].split()
            if not all(x.isdigit() for x in ids):
                raise ParseError(
                    text.source, text.line_no(i), "CPU ids separated by spaces", match[2]
                )
            cpus[int(match[1])] = frozenset(int(x) for x in ids)
        elif match := _SIZE.match(line):
            scale = {"MB": 1.0, "kB": 1 / 1024, "GB": 1024.0}[match[3]]
            sizes[int(match[1])] = int(match[2]) * scale
        elif line.startswith("node distances"):
            continue
        elif line.startswith("node ") and header is None:
            parts = line.split()[1:]
            if all(p.isdigit() for p in parts):
                header = [int(p) for p in parts]
        elif header is not None and re.match(r"^\d+:", line):
            node_text, _, rest = line.partition(":")
            values = rest.split()
            if len(values) != len(header) or not all(v.isdigit() for v in values):
                raise ParseError(
                    text.source,
                    text.line_no(i),
                    f"{len(header)} distances (one per node in the header: the "
                    "table must be square)",
                    line,
                )
            distances[int(node_text)] = tuple(zip(header, (int(v) for v in values), strict=True))
    if announced is None:
        raise ParseError(text.source, text.first_line, "'available: N nodes (...)' of numactl -H")
    missing = sorted(announced - set(cpus))
    if missing:
        raise ParseError(
            text.source,
            text.line_no(announced_at),
            f"a 'node N cpus:' line for every announced node; missing {missing} "
            "(is the output truncated?)",
        )
    nodes = tuple(
        NumaFact(
            text.source, n, cpus=cpus[n], memory_mib=sizes.get(n), distances=distances.get(n, ())
        )
        for n in sorted(announced)
    )
    return Facts(numa=nodes, sources=(text.source,))
