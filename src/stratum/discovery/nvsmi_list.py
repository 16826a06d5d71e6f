"""Parsers of `nvidia-smi -L` (GPUs and MIG devices) and `nvidia-smi nvlink --status`."""

from __future__ import annotations

import re

from stratum.discovery.sources import Facts, GpuFact, MigDeviceFact, Note, ParseError, Text

GPU_LINE = re.compile(r"^\s*GPU (\d+): (.+?) \(UUID: ([^)]+)\)\s*$")
_MIG_LINE = re.compile(r"^\s*MIG (\S+)\s+Device\s+(\d+): \(UUID: ([^)]+)\)\s*$")
_LINK_LINE = re.compile(r"^\s*Link (\d+): (.+?)\s*$")
_GBPS = re.compile(r"^([0-9.]+) GB/s$")
_NO_NVLINK = (
    "does not have or support nvlink",
    "nvlink queries are not supported",
    "not supported",
)


def is_nvlink_status(text: Text) -> bool:
    return any(_LINK_LINE.match(line) for line in text.lines) or any(
        "nvlink" in line.lower() and not GPU_LINE.match(line) for line in text.lines
    )


def parse_gpu_list(text: Text) -> Facts:
    """nvidia-smi -L: one line per GPU, indented MIG lines below their GPU."""
    gpus: list[GpuFact] = []
    migs: list[MigDeviceFact] = []
    notes: list[Note] = []
    current: int | None = None
    seen: set[int] = set()
    for i, line in enumerate(text.lines):
        if not line.strip():
            continue
        gpu = GPU_LINE.match(line)
        if gpu:
            current = int(gpu[1])
            if current in seen:
                # Several listings in one file (before and after a MIG change): the last wins.
                notes.append(
                    Note(
                        text.source,
                        f"GPU {current} listed again; the later listing replaces the earlier",
                        text.line_no(i),
                    )
                )
                gpus = [g for g in gpus if g.index != current]
                migs = [m for m in migs if m.gpu != current]
            seen.add(current)
            gpus.append(
                GpuFact(
                    text.source, index=current, product_name=gpu[2].strip(), uuid=gpu[3].strip()
                )
            )
            continue
        mig = _MIG_LINE.match(line)
        if mig:
            if current is None:
                raise ParseError(
                    text.source,
                    text.line_no(i),
                    "a 'GPU <n>:' line before MIG devices",
                    line.strip(),
                )
            migs.append(
                MigDeviceFact(
                    gpu=current,
                    index=int(mig[2]),
                    profile=mig[1],
                    uuid=mig[3].strip(),
                    source=text.source,
                )
            )
            gpus = [g if g.index != current else _with_mig(g) for g in gpus]
            continue
        if line.lstrip().startswith(("GPU ", "MIG ")):
            raise ParseError(
                text.source,
                text.line_no(i),
                "'GPU <n>: <name> (UUID: GPU-...)' or 'MIG <profile> Device <n>: (UUID: ...)'",
                line.strip(),
            )
    if not gpus:
        raise ParseError(
            text.source,
            text.first_line,
            "at least one 'GPU <n>: <name> (UUID: ...)' line of nvidia-smi -L",
        )
    return Facts(
        gpus=tuple(gpus), mig_devices=tuple(migs), notes=tuple(notes), sources=(text.source,)
    )


def _with_mig(g: GpuFact) -> GpuFact:
    return GpuFact(
        g.source,
        index=g.index,
        product_name=g.product_name,
        uuid=g.uuid,
        mig_capable=True,
        mig_enabled=True,
    )


def parse_nvlink_status(text: Text) -> Facts:
    """nvidia-smi nvlink --status: per GPU, each link's speed or <inactive>."""
    gpus: list[GpuFact] = []
    notes: list[Note] = []
    current: tuple[int, str, str] | None = None
    speeds: list[float] = []
    inactive = 0
    unsupported = False

    def close() -> None:
        if current is None:
            return
        index, name, uuid = current
        per_link = min(speeds) if speeds else None
        gpus.append(
            GpuFact(
                text.source,
                index=index,
                product_name=name,
                uuid=uuid,
                nvlink_active=len(speeds),
                nvlink_gbps_per_link=per_link,
                nvlink_supported=False if unsupported and not speeds else None,
            )
        )
        if inactive:
            notes.append(Note(text.source, f"GPU {index}: {inactive} NVLink(s) inactive"))

    for i, line in enumerate(text.lines):
        if not line.strip():
            continue
        gpu = GPU_LINE.match(line)
        if gpu:
            close()
            current = (int(gpu[1]), gpu[2].strip(), gpu[3].strip())
            speeds, inactive, unsupported = [], 0, False
            continue
        link = _LINK_LINE.match(line)
        if link:
            if current is None:
                raise ParseError(
                    text.source, text.line_no(i), "a 'GPU <n>:' line before its links", line.strip()
                )
            value = link[2]
            speed = _GBPS.match(value)
            if speed:
                speeds.append(float(speed[1]))
            elif "inactive" in value.lower():
                inactive += 1
            else:
                raise ParseError(
                    text.source,
                    text.line_no(i),
                    "a link speed like '25 GB/s' or '<inactive>'",
                    value,
                )
            continue
        if current is not None and any(s in line.lower() for s in _NO_NVLINK):
            unsupported = True
            continue
        raise ParseError(
            text.source,
            text.line_no(i),
            "'GPU <n>: ...' or 'Link <n>: <speed>' lines of nvidia-smi nvlink -s",
            line.strip(),
        )
    close()
    if not gpus:
        raise ParseError(text.source, text.first_line, "GPU lines of nvidia-smi nvlink -s")
    return Facts(gpus=tuple(gpus), notes=tuple(notes), sources=(text.source,))
