"""What every discovery parser shares: where a text came from, its errors and its warnings.

A parser gets a `Text` (lines of one command's output, with the file or command it came from
and the line it starts at) and returns `Facts`. It raises `ParseError` when the output cannot
be read without guessing, naming the source, the line and what was expected; where a
documented best-effort reading exists it returns the result with a `Note` instead.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.parsers import expat

from stratum.core.errors import StratumError

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The header lines the shared fixtures (and saved outputs an operator annotates) start with.
_PROVENANCE = re.compile(
    r"^#\s*(source|machine|command|commands|content|format|reference|note|host)\b[^\n]*$"
)


@dataclass(frozen=True, slots=True)
class Text:
    """Lines of one command's output; `first_line` is the 1-based line number of lines[0]."""

    source: str
    lines: tuple[str, ...]
    first_line: int = 1
    command: str | None = None  # the command the capture says it ran, when it says

    @classmethod
    def of(cls, source: str, text: str, *, command: str | None = None) -> Text:
        return cls(source, clean_lines(text), 1, command)

    def where(self, index: int) -> str:
        """'file:line' for lines[index]."""
        return f"{self.source}:{self.first_line + index}"

    def line_no(self, index: int) -> int:
        return self.first_line + index

    @property
    def body(self) -> str:
        return "\n".join(self.lines)


def clean_lines(text: str) -> tuple[str, ...]:
    """Split into lines; drop CR (Windows captures) and ANSI styling (nvidia-smi on a TTY)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return tuple(_ANSI.sub("", line) for line in text.split("\n"))


def strip_provenance(text: Text) -> Text:
    """Drop the leading '# source:' / '# machine:' / '# command:' lines of a saved output."""
    lines = text.lines
    skip = 0
    while skip < len(lines) and _PROVENANCE.match(lines[skip]):
        skip += 1
    return Text(text.source, lines[skip:], text.first_line + skip, text.command)


@dataclass(frozen=True, slots=True)
class XmlDocument:
    """An XML output parsed with the line each element starts on, for error messages."""

    root: ET.Element
    lines: dict[int, int]  # id(element) -> line in the source
    first_line: int

    def line_of(self, element: ET.Element) -> int:
        return self.lines.get(id(element), self.first_line)


def parse_xml(text: Text, markers: tuple[str, ...], expected: str) -> XmlDocument:
    """Parse the XML document that starts at the first of `markers` found in the text.

    ElementTree keeps no line numbers, so expat builds the tree and remembers them.
    """
    body = text.body
    start = next((at for m in markers if (at := body.find(m)) >= 0), 0)
    first = text.first_line + body[:start].count("\n")
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate()

    def begin(tag: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start(tag, attrs))] = first + parser.CurrentLineNumber - 1

    parser.StartElementHandler = begin
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(body[start:], True)
        root = builder.close()
    except (expat.ExpatError, AssertionError) as exc:
        line = first + getattr(exc, "lineno", 1) - 1
        raise ParseError(text.source, line, expected, str(exc)) from None
    return XmlDocument(root, lines, first)


class ParseError(StratumError):
    """An output Stratum cannot read without guessing: names the source, line and expectation."""

    def __init__(
        self, source: str, line: int | None, expected: str, found: str | None = None
    ) -> None:
        self.source = source
        self.line = line
        self.expected = expected
        self.found = found
        where = f"{source}:{line}" if line is not None else source
        message = f"{where}: expected {expected}"
        if found is not None:
            shown = found if len(found) <= 120 else found[:117] + "..."
            message += f", found {shown!r}"
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Note:
    """A warning about a best-effort reading; printed to stderr by `stratum discover`."""

    source: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"


# ---- facts: what parsers report, before the assembler reconciles them ----------------------


@dataclass(frozen=True, slots=True)
class MigDeviceFact:
    gpu: int
    index: int
    profile: str | None = None
    uuid: str | None = None
    memory_mib: float | None = None
    sms: int | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class MigProfileFact:
    gpu: int
    name: str
    slices: int
    memory_gib: float
    max_instances: int
    sms: int | None = None


@dataclass(frozen=True, slots=True)
class GpuFact:
    """What one source says about one GPU. `index` is nvidia-smi's index when known."""

    source: str
    index: int | None = None
    product_name: str | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    pci_device_id: str | None = None
    memory_mib: float | None = None
    architecture: str | None = None
    numa_node: int | None = None
    cpu_affinity: frozenset[int] | None = None
    pcie_switch: str | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    mig_capable: bool | None = None
    mig_enabled: bool | None = None
    power_limit_w: float | None = None
    nvlink_active: int | None = None
    nvlink_gbps_per_link: float | None = None
    nvlink_supported: bool | None = None
    vendor: str | None = None  # "NVIDIA" or "AMD"
    # Every node nvidia-smi lists as the GPU's NUMA affinity (Grace lists several: the CPU's
    # node and other GPUs' memory nodes); numa_node is then the lowest, until the assembler
    # picks the one with CPUs.
    numa_candidates: frozenset[int] | None = None
    memory_numa_node: int | None = None  # the GPU's own memory as a NUMA node (GH200, GB200)


@dataclass(frozen=True, slots=True)
class NicFact:
    source: str
    name: str
    rdma: bool | None = None
    speed_gbps: float | None = None
    link_layer: str | None = None
    active: bool | None = None
    model: str | None = None
    numa_node: int | None = None
    pci_bus_id: str | None = None
    pcie_switch: str | None = None
    from_pci_only: bool = False  # lspci/XML know the function, not the RDMA device name


@dataclass(frozen=True, slots=True)
class NumaFact:
    source: str
    id: int
    cpus: frozenset[int] | None = None
    memory_mib: float | None = None
    distances: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class CpuFact:
    """CPU totals and, from lscpu -p, each logical CPU's core, socket and node."""

    source: str
    architecture: str | None = None
    model_name: str | None = None
    vendor: str | None = None
    logical_cpus: int | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    numa_nodes: int | None = None
    # (cpu, core, socket, node) per logical CPU; node -1 when not reported
    per_cpu: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class LinkFact:
    """A measured link matrix (nvidia-smi topo -m)."""

    source: str
    devices: tuple[str, ...]
    classes: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class XgmiFact:
    """GPU pairs joined by AMD Infinity Fabric (xGMI); a GPU is "GPU<i>" or its PCI address."""

    source: str
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything some sources said; `merge` joins the facts of several sources."""

    gpus: tuple[GpuFact, ...] = ()
    mig_devices: tuple[MigDeviceFact, ...] = ()
    mig_profiles: tuple[MigProfileFact, ...] = ()
    nics: tuple[NicFact, ...] = ()
    numa: tuple[NumaFact, ...] = ()
    cpus: tuple[CpuFact, ...] = ()
    links: tuple[LinkFact, ...] = ()
    xgmi: tuple[XgmiFact, ...] = ()
    nvswitches: int | None = None
    attached_gpus: tuple[tuple[str, int], ...] = ()  # (source, count the source claims)
    memory_mib: float | None = None
    hostname: str | None = None
    notes: tuple[Note, ...] = ()
    sources: tuple[str, ...] = field(default=())

    def merge(self, other: Facts) -> Facts:
        return Facts(
            gpus=self.gpus + other.gpus,
            mig_devices=self.mig_devices + other.mig_devices,
            mig_profiles=self.mig_profiles + other.mig_profiles,
            nics=self.nics + other.nics,
            numa=self.numa + other.numa,
            cpus=self.cpus + other.cpus,
            links=self.links + other.links,
            xgmi=self.xgmi + other.xgmi,
            nvswitches=other.nvswitches if other.nvswitches is not None else self.nvswitches,
            attached_gpus=self.attached_gpus + other.attached_gpus,
            memory_mib=other.memory_mib if other.memory_mib is not None else self.memory_mib,
            hostname=other.hostname or self.hostname,
            notes=self.notes + other.notes,
            sources=self.sources + other.sources,
        )


def merge_all(items: list[Facts]) -> Facts:
    out = Facts()
    for item in items:
        out = out.merge(item)
    return out


def normalise_bus_id(bus_id: str) -> str:
    """'00000000:01:00.0' / '0000:01:00.0' / '01:00.0' -> '0000:01:00.0' (lowercase)."""
    text = bus_id.strip().lower()
    match = re.fullmatch(r"(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])", text)
    if not match:
        return text
    domain = int(match[1] or "0", 16)
    return f"{domain:04x}:{int(match[2], 16):02x}:{int(match[3], 16):02x}.{match[4]}"
