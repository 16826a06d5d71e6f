"""Parsers of RDMA device listings: `ibstat`, `ibstatus`, `ibv_devinfo`, /sys/class/infiniband.

Every device these list is an RDMA device (InfiniBand, or RoCE when the link layer is
Ethernet). A device with several ports is reported once, at the rate of its fastest
active port; a port that is not active contributes no speed.
"""

from __future__ import annotations

import re
from pathlib import Path

from stratum.discovery.sources import Facts, NicFact, Note, ParseError, Text, normalise_bus_id

# Mellanox/NVIDIA "CA type" (PCI device id, decimal) -> product family.
CA_TYPES: dict[str, str] = {
    "MT4115": "ConnectX-4",
    "MT4117": "ConnectX-4 Lx",
    "MT4119": "ConnectX-5",
    "MT4121": "ConnectX-5 Ex",
    "MT4123": "ConnectX-6",
    "MT4125": "ConnectX-6 Dx",
    "MT4127": "ConnectX-6 Lx",
    "MT4129": "ConnectX-7",
    "MT4131": "ConnectX-8",
    "MT41686": "BlueField-2",
    "MT41692": "BlueField-3",
}


class _Port:
    __slots__ = ("active", "layer", "rate")

    def __init__(self) -> None:
        self.active: bool | None = None
        self.rate: float | None = None
        self.layer: str | None = None


def _layer(value: str) -> str | None:
    text = value.strip().lower()
    if text.startswith("infiniband"):
        return "InfiniBand"
    if text.startswith("ethernet"):
        return "Ethernet"
    return None


def _nic(
    source: str, name: str, ca_type: str | None, ports: list[_Port], notes: list[Note]
) -> NicFact:
    active = [p for p in ports if p.active]
    down = [i + 1 for i, p in enumerate(ports) if p.active is False]
    if down:
        notes.append(Note(source, f"{name}: port(s) {down} not active; their rate is not counted"))
    speed = max((p.rate or 0.0 for p in active), default=0.0)
    layers = {p.layer for p in ports if p.layer}
    return NicFact(
        source,
        name,
        rdma=True,
        speed_gbps=speed or None,
        link_layer=layers.pop() if len(layers) == 1 else None,
        active=bool(active),
        model=CA_TYPES.get(ca_type or "", ca_type),
    )


def parse_ibstat(text: Text) -> Facts:
    nics: list[NicFact] = []
    notes: list[Note] = []
    name: str | None = None
    ca_type: str | None = None
    ports: list[_Port] = []
    port: _Port | None = None
    for i, raw in enumerate(text.lines):
        line = raw.strip()
        if not line:
            continue
        if match := re.match(r"^CA '([^']+)'$", line):
            if name is not None:
                nics.append(_nic(text.source, name, ca_type, ports, notes))
            name, ca_type, ports, port = match[1], None, [], None
            continue
        if name is None:
            raise ParseError(text.source, text.line_no(i), "a \"CA '<device>'\" line first", line)
        if match := re.match(r"^Port (\d+):$", line):
            port = _Port()
            ports.append(port)
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ParseError(text.source, text.line_no(i), "'Key: value' lines of ibstat", line)
        key, value = key.strip(), value.strip()
        if key == "CA type":
            ca_type = value
        elif port is not None and key == "State":
            port.active = value.lower() == "active"
        elif port is not None and key == "Rate":
            try:
                port.rate = float(value)
            except ValueError:
                port.rate = -1.0
            if not 0 <= port.rate < float("inf"):
                raise ParseError(text.source, text.line_no(i), "a rate in Gb/s", value)
        elif port is not None and key == "Link layer":
            port.layer = _layer(value)
    if name is None:
        raise ParseError(text.source, text.first_line, "\"CA '<device>'\" blocks of ibstat")
    nics.append(_nic(text.source, name, ca_type, ports, notes))
    return Facts(nics=tuple(nics), notes=tuple(notes), sources=(text.source,))


_IBSTATUS_HEAD = re.compile(r"^Infiniband device '([^']+)' port (\d+) status:$")
_RATE = re.compile(r"^([0-9.]+)\s*Gb/sec")


def parse_ibstatus(text: Text) -> Facts:
    devices: dict[str, list[_Port]] = {}
    notes: list[Note] = []
    port: _Port | None = None
    for i, raw in enumerate(text.lines):
        line = raw.strip()
        if not line:
            continue
        if match := _IBSTATUS_HEAD.match(line):
            port = _Port()
            devices.setdefault(match[1], []).append(port)
            continue
        if port is None:
            raise ParseError(
                text.source,
                text.line_no(i),
                "\"Infiniband device '<name>' port <n> status:\" first",
                line,
            )
        key, sep, value = line.partition(":")
        if not sep:
            raise ParseError(text.source, text.line_no(i), "'key: value' lines of ibstatus", line)
        key, value = key.strip(), value.strip()
        if key == "state":
            port.active = "ACTIVE" in value.upper()
        elif key == "rate":
            rate = _RATE.match(value)
            if not rate:
                raise ParseError(text.source, text.line_no(i), "a rate like '100 Gb/sec'", value)
            port.rate = float(rate[1])
        elif key == "link_layer":
            port.layer = _layer(value)
    if not devices:
        raise ParseError(text.source, text.first_line, "device blocks of ibstatus")
    nics = [_nic(text.source, name, None, ports, notes) for name, ports in devices.items()]
    return Facts(nics=tuple(nics), notes=tuple(notes), sources=(text.source,))


# active_width 4X and active_speed 25.0 Gbps (32) -> 100 Gb/s
_WIDTH = re.compile(r"^(\d+)X")
_SPEED = re.compile(r"^([0-9.]+)\s*Gbps")


def parse_ibv_devinfo(text: Text) -> Facts:
    nics: list[NicFact] = []
    notes: list[Note] = []
    name: str | None = None
    ports: list[_Port] = []
    port: _Port | None = None
    width: int | None = None
    for i, raw in enumerate(text.lines):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "hca_id":
            if name is not None:
                nics.append(_nic(text.source, name, None, ports, notes))
            name, ports, port = value, [], None
            continue
        if name is None:
            raise ParseError(text.source, text.line_no(i), "'hca_id: <device>' first", line)
        if key == "port":
            port = _Port()
            ports.append(port)
            width = None
        elif port is not None and key == "state":
            port.active = "ACTIVE" in value.upper()
        elif port is not None and key == "active_width":
            match = _WIDTH.match(value)
            width = int(match[1]) if match else None
        elif port is not None and key == "active_speed":
            match = _SPEED.match(value)
            if match and width:
                port.rate = float(match[1]) * width
        elif port is not None and key == "link_layer":
            port.layer = _layer(value)
        elif not sep:
            raise ParseError(
                text.source, text.line_no(i), "'key: value' lines of ibv_devinfo", line
            )
    if name is None:
        raise ParseError(text.source, text.first_line, "'hca_id:' blocks of ibv_devinfo")
    nics.append(_nic(text.source, name, None, ports, notes))
    return Facts(nics=tuple(nics), notes=tuple(notes), sources=(text.source,))


def read_sysfs_infiniband(root: Path) -> Facts:
    """/sys/class/infiniband/<dev>/ports/<n>/{state,rate,link_layer} and device/numa_node."""
    base = root / "sys/class/infiniband"
    if not base.is_dir():
        return Facts()
    nics: list[NicFact] = []
    notes: list[Note] = []
    source = str(base)
    for dev in sorted(base.iterdir()):
        ports: list[_Port] = []
        for port_dir in sorted((dev / "ports").glob("*")):
            port = _Port()
            state = _read(port_dir / "state")
            port.active = state is not None and "ACTIVE" in state.upper()
            rate = _RATE.match(_read(port_dir / "rate") or "")
            port.rate = float(rate[1]) if rate else None
            port.layer = _layer(_read(port_dir / "link_layer") or "")
            ports.append(port)
        nic = _nic(source, dev.name, None, ports, notes)
        numa = _read(dev / "device/numa_node")
        bus = (dev / "device").resolve().name if (dev / "device").exists() else None
        nics.append(
            NicFact(
                source,
                nic.name,
                rdma=True,
                speed_gbps=nic.speed_gbps,
                link_layer=nic.link_layer,
                active=nic.active,
                numa_node=int(numa)
                if numa and numa.lstrip("-").isdigit() and int(numa) >= 0
                else None,
                pci_bus_id=normalise_bus_id(bus)
                if bus and re.match(r"^[0-9a-f:.]+$", bus)
                else None,
            )
        )
    return Facts(nics=tuple(nics), notes=tuple(notes), sources=(source,) if nics else ())


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
