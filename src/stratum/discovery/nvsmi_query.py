"""Parsers of `nvidia-smi -q` (text), `nvidia-smi -q -x` (XML) and `--query-gpu --format=csv`.

All three describe each GPU's name, UUID, PCI bus id, memory, PCIe link, power limits and
MIG state. nvidia-smi lists GPUs in PCI bus order, which is also its index order, so the
n-th GPU of the report is GPU n. "N/A" and "[N/A]" read as unknown.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from stratum.discovery.sources import (
    Facts,
    GpuFact,
    MigDeviceFact,
    Note,
    ParseError,
    Text,
    normalise_bus_id,
    parse_xml,
)

_KV = re.compile(r"^(\s*)(\S.*?)\s+:\s?(.*)$")
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z/%]*)\s*$")


def _unknown(value: str | None) -> bool:
    return value is None or value.strip() in (
        "",
        "N/A",
        "[N/A]",
        "Not Supported",
        "[Not Supported]",
        "Unknown Error",
    )


def _number(value: str | None, unit: str | None = None) -> float | None:
    if _unknown(value):
        return None
    assert value is not None
    match = _NUMBER.match(value)
    if not match:
        return None
    if unit is not None and match[2] and match[2].lower() != unit.lower():
        return None
    return float(match[1])


def _mib(value: str | None) -> float | None:
    """'81920 MiB' -> 81920.0; GiB and MB scaled."""
    if _unknown(value):
        return None
    assert value is not None
    match = _NUMBER.match(value)
    if not match:
        return None
    scale = {"": 1.0, "mib": 1.0, "mb": 1.0, "gib": 1024.0, "gb": 1024.0}.get(match[2].lower())
    return float(match[1]) * scale if scale is not None else None


def _width(value: str | None) -> int | None:
    if _unknown(value):
        return None
    assert value is not None
    match = re.match(r"^\s*x?([0-9]+)x?\s*$", value)
    return int(match[1]) if match else None


def _mig_state(value: str | None) -> tuple[bool | None, bool | None]:
    """(capable, enabled) from a MIG mode 'Current' value."""
    if value is None:
        return None, None
    text = value.strip().lower()
    if text in ("enabled", "disabled"):
        return True, text == "enabled"
    if text in ("n/a", "[n/a]", "not supported", "[not supported]"):
        return False, False
    return None, None


# ---- nvidia-smi -q (text) --------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    key: str
    value: str | None
    line: int
    children: list[_Node] = field(default_factory=list)

    def get(self, *path: str) -> _Node | None:
        node: _Node | None = self
        for part in path:
            if node is None:
                return None
            node = next((c for c in node.children if c.key == part), None)
        return node

    def value_of(self, *path: str) -> str | None:
        node = self.get(*path)
        return node.value if node is not None else None


def is_query_text(text: Text) -> bool:
    return any("NVSMI LOG" in line for line in text.lines) or any(
        line.startswith("Attached GPUs") for line in text.lines
    )


def parse_query_text(text: Text) -> Facts:
    root = _Node("", None, text.first_line)
    stack: list[tuple[int, _Node]] = [(-1, root)]
    started = False
    for i, raw in enumerate(text.lines):
        if not raw.strip() or raw.strip().startswith("="):
            started = started or "NVSMI LOG" in raw
            continue
        indent = len(raw) - len(raw.lstrip())
        match = _KV.match(raw)
        if match:
            node = _Node(match[2].strip(), match[3].strip(), text.line_no(i))
        else:
            node = _Node(raw.strip(), None, text.line_no(i))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not stack:
            stack = [(-1, root)]
        stack[-1][1].children.append(node)
        stack.append((indent, node))
        started = True
    if not started:
        raise ParseError(text.source, text.first_line, "the output of nvidia-smi -q")
    gpus: list[GpuFact] = []
    migs: list[MigDeviceFact] = []
    notes: list[Note] = []
    attached: int | None = None
    attached_value = root.value_of("Attached GPUs")
    if attached_value is not None:
        if not attached_value.strip().isdigit():
            line = root.get("Attached GPUs")
            raise ParseError(
                text.source,
                line.line if line else None,
                "a GPU count after 'Attached GPUs :'",
                attached_value,
            )
        attached = int(attached_value)
    sections = [c for c in root.children if re.match(r"^GPU [0-9A-Fa-f]{4,8}:", c.key)]
    for index, section in enumerate(sections):
        bus = normalise_bus_id(section.key.split(" ", 1)[1])
        name = section.value_of("Product Name")
        if name is None:
            raise ParseError(
                text.source,
                section.line,
                f"'Product Name' under {section.key}",
                "none (is the output truncated?)",
            )
        capable, enabled = _mig_state(section.value_of("MIG Mode", "Current"))
        power = (
            _number(section.value_of("GPU Power Readings", "Default Power Limit"), "W")
            or _number(section.value_of("Power Readings", "Default Power Limit"), "W")
            or _number(section.value_of("GPU Power Readings", "Max Power Limit"), "W")
            or _number(section.value_of("Power Readings", "Max Power Limit"), "W")
        )
        link = section.get("PCI", "GPU Link Info")
        gen = _number(link.value_of("PCIe Generation", "Max")) if link else None
        width = _width(link.value_of("Link Width", "Max")) if link else None
        dev_id = section.value_of("PCI", "Device Id")
        memory = _mib(section.value_of("FB Memory Usage", "Total"))
        if memory is None:
            notes.append(
                Note(text.source, f"GPU {index}: no 'FB Memory Usage / Total'", section.line)
            )
        gpus.append(
            GpuFact(
                text.source,
                index=index,
                product_name=name.strip(),
                uuid=None
                if _unknown(section.value_of("GPU UUID"))
                else section.value_of("GPU UUID"),
                pci_bus_id=bus,
                pci_device_id=_device_id(dev_id),
                memory_mib=memory,
                architecture=None
                if _unknown(section.value_of("Product Architecture"))
                else section.value_of("Product Architecture"),
                pcie_gen=int(gen) if gen else None,
                pcie_width=width,
                mig_capable=capable,
                mig_enabled=enabled,
                power_limit_w=power,
            )
        )
        for mig in (c for c in section.children if c.key == "MIG Device"):
            idx = mig.value_of("Index")
            if idx is None or not idx.isdigit():
                raise ParseError(text.source, mig.line, "an 'Index' under 'MIG Device'", idx)
            sms = _number(mig.value_of("Device Attributes", "Shared", "Multiprocessor count"))
            mem = _mib(mig.value_of("Shared FB Memory Usage", "Total")) or _mib(
                mig.value_of("FB Memory Usage", "Total")
            )
            migs.append(
                MigDeviceFact(
                    gpu=index,
                    index=int(idx),
                    memory_mib=mem,
                    sms=int(sms) if sms is not None else None,
                    source=text.source,
                )
            )
    attached_line = root.get("Attached GPUs")
    _check_attached(
        text,
        attached,
        len(sections),
        notes,
        attached_line.line if attached_line else text.first_line,
    )
    return Facts(
        gpus=tuple(gpus),
        mig_devices=tuple(migs),
        notes=tuple(notes),
        attached_gpus=((text.source, attached),) if attached is not None else (),
        sources=(text.source,),
    )


def _device_id(value: str | None) -> str | None:
    """'0x233010DE' (device id then vendor) -> '2330'."""
    if _unknown(value):
        return None
    assert value is not None
    digits = value.strip().lower().removeprefix("0x")
    return digits[:4] if len(digits) == 8 and digits.endswith("10de") else None


def _check_attached(
    text: Text, attached: int | None, described: int, notes: list[Note], line: int
) -> None:
    if attached is None or attached == described:
        return
    if described < attached:
        # `nvidia-smi -q -i 0` prints "Attached GPUs: 4" and one GPU: not a broken output.
        notes.append(
            Note(
                text.source,
                f"reports {attached} attached GPUs but describes {described}; only the described "
                "GPUs are in the profile (was it run with -i? run it without to describe all)",
            )
        )
    else:
        raise ParseError(
            text.source,
            line,
            f"at most {attached} GPU sections, as 'Attached GPUs' says",
            str(described),
        )


# ---- nvidia-smi -q -x (XML) ------------------------------------------------------------


def parse_query_xml(text: Text) -> Facts:
    doc = parse_xml(text, ("<?xml", "<nvidia_smi_log"), "well-formed nvidia-smi -q -x XML")
    root = doc.root
    if root.tag != "nvidia_smi_log":
        raise ParseError(text.source, text.first_line, "an <nvidia_smi_log> document", root.tag)
    gpus: list[GpuFact] = []
    migs: list[MigDeviceFact] = []
    notes: list[Note] = []
    attached_text = root.findtext("attached_gpus")
    attached = int(attached_text) if attached_text and attached_text.strip().isdigit() else None
    elements = root.findall("gpu")
    for index, el in enumerate(elements):
        name = el.findtext("product_name")
        if name is None:
            raise ParseError(
                text.source, doc.line_of(el), f"<product_name> in <gpu> number {index}"
            )
        capable, enabled = _mig_state(el.findtext("mig_mode/current_mig"))
        power = None
        for path in (
            "gpu_power_readings/default_power_limit",
            "power_readings/default_power_limit",
            "gpu_power_readings/max_power_limit",
            "power_readings/max_power_limit",
        ):
            power = _number(el.findtext(path), "W")
            if power:
                break
        gen = _number(el.findtext("pci/pci_gpu_link_info/pcie_gen/max_link_gen"))
        bus = el.findtext("pci/pci_bus_id") or el.get("id")
        gpus.append(
            GpuFact(
                text.source,
                index=index,
                product_name=name.strip(),
                uuid=None if _unknown(el.findtext("uuid")) else el.findtext("uuid"),
                pci_bus_id=normalise_bus_id(bus) if bus else None,
                pci_device_id=_device_id(el.findtext("pci/pci_device_id")),
                memory_mib=_mib(el.findtext("fb_memory_usage/total")),
                architecture=None
                if _unknown(el.findtext("product_architecture"))
                else el.findtext("product_architecture"),
                pcie_gen=int(gen) if gen else None,
                pcie_width=_width(el.findtext("pci/pci_gpu_link_info/link_widths/max_link_width")),
                mig_capable=capable,
                mig_enabled=enabled,
                power_limit_w=power,
            )
        )
        for mig in el.findall("mig_devices/mig_device"):
            idx = mig.findtext("index")
            if idx is None or not idx.strip().isdigit():
                raise ParseError(
                    text.source, doc.line_of(mig), f"<index> in a <mig_device> of GPU {index}"
                )
            sms = _number(mig.findtext("device_attributes/shared/multiprocessor_count"))
            migs.append(
                MigDeviceFact(
                    gpu=index,
                    index=int(idx),
                    memory_mib=_mib(mig.findtext("fb_memory_usage/total")),
                    sms=int(sms) if sms is not None else None,
                    source=text.source,
                )
            )
    attached_el = root.find("attached_gpus")
    _check_attached(
        text,
        attached,
        len(elements),
        notes,
        doc.line_of(attached_el) if attached_el is not None else doc.first_line,
    )
    return Facts(
        gpus=tuple(gpus),
        mig_devices=tuple(migs),
        notes=tuple(notes),
        attached_gpus=((text.source, attached),) if attached is not None else (),
        sources=(text.source,),
    )


# ---- nvidia-smi --query-gpu=... --format=csv ------------------------------------------

_CSV_COLUMN = re.compile(r"^[a-z][a-z0-9_.]*( \[[^\]]+\])?$", re.IGNORECASE)
_CSV_KNOWN = ("name", "uuid", "pci.bus_id", "index", "memory.total", "memory.used")


def is_query_csv(text: Text) -> bool:
    first = next((line for line in text.lines if line.strip()), "")
    columns = [c.strip() for c in first.split(",")]
    return (
        len(columns) >= 2
        and all(_CSV_COLUMN.match(c) for c in columns)
        and any(c.split(" [")[0] in _CSV_KNOWN for c in columns)
    )


def parse_query_csv(text: Text) -> Facts:
    start = next((i for i, line in enumerate(text.lines) if line.strip()), None)
    if start is None:
        raise ParseError(text.source, text.first_line, "a CSV header line")
    header = [c.strip() for c in text.lines[start].split(",")]
    if not all(_CSV_COLUMN.match(c) for c in header):
        raise ParseError(
            text.source,
            text.line_no(start),
            "a header of --query-gpu field names (run with --format=csv, not csv,noheader)",
            text.lines[start],
        )
    keys = [c.split(" [")[0].strip() for c in header]
    notes: list[Note] = []
    if "name" not in keys:
        notes.append(
            Note(
                text.source,
                "no 'name' column: GPU models are unknown from this CSV",
                text.line_no(start),
            )
        )
    gpus: list[GpuFact] = []
    rows = list(csv.reader(io.StringIO("\n".join(text.lines[start + 1 :])), skipinitialspace=True))
    line = start + 1
    for position, row in enumerate(r for r in rows if any(c.strip() for c in r)):
        while line < len(text.lines) and not text.lines[line].strip():
            line += 1
        if len(row) != len(keys):
            raise ParseError(
                text.source,
                text.line_no(line),
                f"{len(keys)} values as the header names",
                f"{len(row)} values",
            )
        values = {k: v.strip() for k, v in zip(keys, row, strict=True)}
        index = int(values["index"]) if values.get("index", "").isdigit() else position
        memory = _mib(values.get("memory.total"))
        if memory is None and all(
            k in values for k in ("memory.used", "memory.free", "memory.reserved")
        ):
            parts = [_mib(values[k]) for k in ("memory.used", "memory.free", "memory.reserved")]
            if all(p is not None for p in parts):
                # No memory.total column: used + free + reserved is the same total.
                memory = sum(p for p in parts if p is not None)
                notes.append(
                    Note(
                        text.source,
                        f"GPU {index}: memory.total missing; took "
                        "memory.used + memory.free + memory.reserved",
                        text.line_no(line),
                    )
                )
        capable, enabled = _mig_state(values.get("mig.mode.current"))
        bus = values.get("pci.bus_id")
        power = (
            _number(values.get("power.default_limit"), "W")
            or _number(values.get("power.limit"), "W")
            or _number(values.get("enforced.power.limit"), "W")
        )
        gen = _number(values.get("pcie.link.gen.max"))
        gpus.append(
            GpuFact(
                text.source,
                index=index,
                product_name=None if _unknown(values.get("name")) else values.get("name"),
                uuid=None if _unknown(values.get("uuid")) else values.get("uuid"),
                pci_bus_id=None if _unknown(bus) else normalise_bus_id(bus or ""),
                pci_device_id=_device_id(values.get("pci.device_id")),
                memory_mib=memory,
                pcie_gen=int(gen) if gen else None,
                pcie_width=_width(values.get("pcie.link.width.max")),
                mig_capable=capable,
                mig_enabled=enabled,
                power_limit_w=power,
            )
        )
        line += 1
    if not gpus:
        raise ParseError(text.source, text.line_no(start) + 1, "one CSV row per GPU", "no rows")
    return Facts(gpus=tuple(gpus), notes=tuple(notes), sources=(text.source,))
