"""Parsers of AMD Instinct outputs: `rocm-smi` (--showtopo, the concise table, --showmeminfo,
--showproductname, --showbus) and `amd-smi topology`.

rocm-smi prints sections under `==== Title ====` banners: the topology matrices (weight,
hops, link type) between GPU<i> columns, `GPU[i] : key: value` lines, and the concise table
(one row per GPU, its device id, power cap, and in older releases the name on the next
line). amd-smi prints `NAME TABLE:` matrices whose rows and columns are PCI addresses. Pairs
whose link type is XGMI form the Infinity Fabric domain, AMD's equivalent of NVLink. A
section the parser does not know is skipped with a note that names its line.
"""

from __future__ import annotations

import re

from stratum.discovery.sources import (
    Facts,
    GpuFact,
    Note,
    ParseError,
    Text,
    XgmiFact,
    normalise_bus_id,
)

_BANNER = re.compile(r"^=+\s*(?P<title>.*?)\s*=+\s*$")
_KEY_VALUE = re.compile(r"^GPU\[(?P<gpu>[0-9]+)\]\s*:\s*(?P<key>.*?):\s*(?P<value>.*?)\s*$")
_NUMA_LINE = re.compile(
    r"^GPU\[?\s*(?P<gpu>[0-9]+)\]?\s*:\s*\(Topology\)\s*(?P<key>.*?):\s*(?P<value>\S*)"
)
_CONCISE_ROW = re.compile(r"^(?P<gpu>[0-9]+)\s+\S")
_DEVICE_ID = re.compile(r"\b0x(?P<id>[0-9a-fA-F]{4})\b")
_WATTS = re.compile(r"^(?P<w>[0-9]+(?:\.[0-9]+)?)W$")
_AMD_SMI_TABLE = re.compile(r"^(?P<title>[A-Z][A-Z0-9 -]*?) TABLE:\s*$")
_BDF = re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
_MATRIX_TITLES = ("weight between two gpus", "hops between two gpus", "link type between two gpus")
_KNOWN_TITLES = (
    *_MATRIX_TITLES,
    "rocm system management interface",
    "numa nodes",
    "concise info",
    "memory usage (bytes)",
    "product info",
    "pci bus id",
    "end of rocm smi log",
)


def is_rocm_smi(text: Text) -> bool:
    return any(
        (m := _BANNER.match(line)) is not None
        and m["title"].lower() in ("rocm system management interface", *_MATRIX_TITLES)
        for line in text.lines
    )


def is_amd_smi_topology(text: Text) -> bool:
    return any(
        (m := _AMD_SMI_TABLE.match(line.strip())) is not None and m["title"] == "LINK TYPE"
        for line in text.lines
    )


class _Gpus:
    """What the sections say about each GPU index, filled in section by section."""

    def __init__(self) -> None:
        self.fields: dict[int, dict[str, object]] = {}

    def set(self, gpu: int, key: str, value: object) -> None:
        self.fields.setdefault(gpu, {})[key] = value

    def facts(self, source: str) -> tuple[GpuFact, ...]:
        out = []
        for gpu, fields in sorted(self.fields.items()):
            numa = fields.get("numa_node")
            memory = fields.get("memory_mib")
            power = fields.get("power_limit_w")
            out.append(
                GpuFact(
                    source,
                    index=gpu,
                    vendor="AMD",
                    product_name=_str(fields.get("product_name")),
                    pci_device_id=_str(fields.get("pci_device_id")),
                    pci_bus_id=_str(fields.get("pci_bus_id")),
                    numa_node=numa if isinstance(numa, int) else None,
                    memory_mib=memory if isinstance(memory, float) else None,
                    power_limit_w=power if isinstance(power, float) else None,
                )
            )
        return tuple(out)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_rocm_smi(text: Text) -> Facts:
    gpus = _Gpus()
    notes: list[Note] = []
    pairs: list[tuple[str, str]] = []
    title = ""
    i = 0
    lines = text.lines
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        banner = _BANNER.match(stripped) if stripped.startswith("=") else None
        if banner:
            if banner["title"]:
                title = banner["title"].lower()
                if title not in _KNOWN_TITLES and title != "% time gpu is busy":
                    notes.append(
                        Note(
                            text.source,
                            f"rocm-smi section {banner['title']!r} is not read; skipped",
                            text.line_no(i),
                        )
                    )
            i += 1
            continue
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        if stripped.startswith("WARNING"):
            notes.append(Note(text.source, f"rocm-smi says: {stripped}", text.line_no(i)))
        elif title in _MATRIX_TITLES and all(
            re.fullmatch(r"GPU[0-9]+", t) for t in stripped.split()
        ):
            i = _rocm_matrix(text, i, title, pairs)
            continue
        elif title == "concise info":
            i = _concise(text, i, gpus)
            continue
        else:
            _rocm_key_value(text, i, gpus)
        i += 1
    return Facts(
        gpus=gpus.facts(text.source),
        xgmi=(XgmiFact(text.source, tuple(pairs)),) if pairs else (),
        notes=tuple(notes),
        sources=(text.source,),
    )


def _rocm_matrix(text: Text, at: int, title: str, pairs: list[tuple[str, str]]) -> int:
    """Read a GPU<i> x GPU<j> matrix whose header is lines[at]; the index after its rows."""
    columns = text.lines[at].split()
    if any(not re.fullmatch(r"GPU[0-9]+", c) for c in columns) or len(set(columns)) != len(columns):
        raise ParseError(
            text.source, text.line_no(at), "a header of distinct GPU<i> columns", text.lines[at]
        )
    i = at + 1
    while i < len(text.lines):
        tokens = text.lines[i].split()
        if not tokens or tokens[0] not in columns:
            break
        if len(tokens) != len(columns) + 1:
            raise ParseError(
                text.source,
                text.line_no(i),
                f"{len(columns)} values in row {tokens[0]} (one per GPU column)",
                text.lines[i].strip(),
            )
        if title == "link type between two gpus":
            for column, value in zip(columns, tokens[1:], strict=True):
                if value.upper() == "XGMI" and column != tokens[0]:
                    pairs.append((tokens[0], column))
        i += 1
    return i


def _concise(text: Text, at: int, gpus: _Gpus) -> int:
    """One concise-table row (and, in older releases, the name line under it)."""
    line = text.lines[at]
    row = _CONCISE_ROW.match(line)
    if row is None:
        return at + 1  # the column headers
    gpu = int(row["gpu"])
    device = _DEVICE_ID.search(line)
    if device:
        gpus.set(gpu, "pci_device_id", device["id"].lower())
    watts = [float(m["w"]) for t in line.split() if (m := _WATTS.match(t))]
    if len(watts) >= 2:
        gpus.set(gpu, "power_limit_w", watts[-1])  # Power (socket) comes first, then PwrCap
    nxt = text.lines[at + 1] if at + 1 < len(text.lines) else ""
    if nxt[:1].isspace() and nxt.strip() and not nxt.strip().startswith(("(", "=")):
        gpus.set(gpu, "product_name", nxt.strip())
        return at + 2
    return at + 1


def _rocm_key_value(text: Text, at: int, gpus: _Gpus) -> None:
    line = text.lines[at].strip()
    numa = _NUMA_LINE.match(line)
    if numa:
        if numa["key"].lower() == "numa node" and numa["value"].isdigit():
            gpus.set(int(numa["gpu"]), "numa_node", int(numa["value"]))
        return
    match = _KEY_VALUE.match(line)
    if match is None:
        return
    gpu, key, value = int(match["gpu"]), match["key"].lower(), match["value"]
    if key == "vram total memory (b)" and value.isdigit():
        gpus.set(gpu, "memory_mib", int(value) / 2**20)
    elif key == "card series" and value and value != "N/A":
        gpus.set(gpu, "product_name", value)
    elif key == "card model" and (device := _DEVICE_ID.search(value)):
        gpus.set(gpu, "pci_device_id", device["id"].lower())
    elif key == "pci bus" and _BDF.match(value):
        gpus.set(gpu, "pci_bus_id", normalise_bus_id(value))


def parse_amd_smi_topology(text: Text) -> Facts:
    """`amd-smi topology`: GPUs by PCI address (amd-smi's GPU ids follow address order)."""
    notes: list[Note] = []
    pairs: list[tuple[str, str]] = []
    devices: list[str] = []
    i = 0
    lines = text.lines
    while i < len(lines):
        table = _AMD_SMI_TABLE.match(lines[i].strip())
        if table is None:
            i += 1
            continue
        header_at = i + 1
        columns = lines[header_at].split() if header_at < len(lines) else []
        if not columns or not all(_BDF.match(c) for c in columns):
            raise ParseError(
                text.source,
                text.line_no(min(header_at, len(lines) - 1)),
                f"a header of PCI addresses under {table['title']} TABLE",
                lines[header_at].strip() if header_at < len(lines) else "end of output",
            )
        names = [normalise_bus_id(c) for c in columns]
        if len(set(names)) != len(names):
            raise ParseError(
                text.source, text.line_no(header_at), "distinct PCI addresses", lines[header_at]
            )
        devices = devices or names
        i = header_at + 1
        while i < len(lines):
            tokens = lines[i].split()
            if not tokens or not _BDF.match(tokens[0]):
                break
            if len(tokens) != len(columns) + 1:
                raise ParseError(
                    text.source,
                    text.line_no(i),
                    f"{len(columns)} values in row {tokens[0]} of {table['title']} TABLE",
                    lines[i].strip(),
                )
            if table["title"] == "LINK TYPE":
                row = normalise_bus_id(tokens[0])
                for column, value in zip(names, tokens[1:], strict=True):
                    if value.upper() == "XGMI" and column != row:
                        pairs.append((row, column))
            i += 1
    if not devices:
        raise ParseError(text.source, text.first_line, "amd-smi topology tables (LINK TYPE TABLE:)")
    gpus = tuple(GpuFact(text.source, pci_bus_id=bdf, vendor="AMD") for bdf in sorted(devices))
    return Facts(
        gpus=gpus,
        xgmi=(XgmiFact(text.source, tuple(pairs)),) if pairs else (),
        notes=tuple(notes),
        sources=(text.source,),
    )
