"""Recognise saved command outputs by their content, whatever the files are called.

A file may hold one output or several: a capture that separates commands with `#####`
banners and `# $ <command>` lines, a terminal log with shell prompts (`$ nvidia-smi topo -m`,
`root@host:~# numactl -H`), or documentation with indented prompts. The file is cut at those
boundaries and each piece is matched against every parser's signature. A directory may also
hold a copy of sysfs under `sys/` (as `stratum discover --save` writes it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from stratum.discovery import (
    amd,
    infiniband,
    k8s_labels,
    lscpu,
    nccl_topo,
    numactl,
    nvsmi_list,
    nvsmi_mig,
    nvsmi_query,
    nvsmi_topo,
    pci,
    sysfs,
)
from stratum.discovery.sources import Facts, Note, Text, clean_lines, merge_all, strip_provenance

MAX_FILE_BYTES = 16 * 1024 * 1024
_BANNER = re.compile(r"^#{20,}\s*$")
_PROMPT = re.compile(
    r"^\s*(?:\[[^\]]*\][$#]|[\w.-]+@[\w.-]+:\S*[$#]|[$#])\s+(?:sudo\s+)?"
    r"(?P<cmd>(?:nvidia-smi|rocm-smi|amd-smi|lscpu|numactl|ibstat|ibstatus|ibv_devinfo|lspci|kubectl|cat)"
    r"\b.*)$"
)
_COMMENT_RULE = re.compile(r"^#\s*-{3,}\s*(?P<what>.*?)\s*-{3,}\s*$")


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    matches: Callable[[Text], bool]
    parse: Callable[[Text], Facts]


def _is_p2p(text: Text) -> bool:
    for line in text.lines:
        tokens = line.split()
        if tokens[:2] == ["GPU0", "X"] and all(
            t in {"X", "OK", "CNS", "GNS", "TNS", "NS", "DR", "U"} for t in tokens[1:]
        ):
            return True
    return False


def _p2p(text: Text) -> Facts:
    return Facts(
        notes=(
            Note(
                text.source,
                "nvidia-smi topo -p2p matrix: peer-access support, not used for the profile",
                text.first_line,
            ),
        ),
        sources=(text.source,),
    )


def _label_reference(text: Text) -> Facts:
    keys = k8s_labels.parse_label_reference(text)
    return Facts(
        notes=(
            Note(
                text.source,
                f"GPU Feature Discovery label reference ({len(keys)} "
                "label keys): documentation, no machine described",
            ),
        ),
        sources=(text.source,),
    )


def _has(pattern: str) -> Callable[[Text], bool]:
    compiled = re.compile(pattern, re.MULTILINE)
    return lambda text: bool(compiled.search(text.body))


def _mig(kind: str, parse: Callable[[Text], Facts] | None) -> Kind:
    def run(text: Text) -> Facts:
        if parse is not None:
            return parse(text)
        return Facts(sources=(text.source,))

    return Kind(
        f"nvidia-smi {kind.replace('mig-', 'mig -')}", lambda t: nvsmi_mig.kind_of(t) == kind, run
    )


# Order matters: the first kind whose signature matches a piece parses it.
KINDS: tuple[Kind, ...] = (
    Kind("nvidia-smi -q -x", _has(r"<nvidia_smi_log"), nvsmi_query.parse_query_xml),
    Kind("NCCL topology XML", nccl_topo.is_nccl_topo, nccl_topo.parse_nccl_topo),
    Kind("GFD label reference", k8s_labels.is_label_reference, _label_reference),
    Kind("Kubernetes node labels", k8s_labels.is_label_json, k8s_labels.parse_labels),
    Kind("numactl -H", numactl.is_numactl, numactl.parse_numactl),
    Kind("rocm-smi", amd.is_rocm_smi, amd.parse_rocm_smi),
    Kind("amd-smi topology", amd.is_amd_smi_topology, amd.parse_amd_smi_topology),
    Kind(
        "nvidia-smi topo -m",
        lambda t: nvsmi_topo.find_header(t) is not None,
        nvsmi_topo.parse_topo_matrix,
    ),
    Kind("nvidia-smi topo -p2p", _is_p2p, _p2p),
    Kind("nvidia-smi -q", nvsmi_query.is_query_text, nvsmi_query.parse_query_text),
    _mig("mig-lgip", nvsmi_mig.parse_lgip),
    _mig("mig-lgipp", None),
    _mig("mig-lgi", nvsmi_mig.parse_lgi),
    _mig("mig-lci", None),
    Kind(
        "nvidia-smi nvlink --status",
        lambda t: _has(r"^\s*GPU \d+: .+\(UUID:")(t) and nvsmi_list.is_nvlink_status(t),
        nvsmi_list.parse_nvlink_status,
    ),
    Kind("nvidia-smi -L", _has(r"^\s*GPU \d+: .+ \(UUID: "), nvsmi_list.parse_gpu_list),
    Kind("ibstat", _has(r"^CA '[^']+'\s*$"), infiniband.parse_ibstat),
    Kind(
        "ibstatus", _has(r"^Infiniband device '[^']+' port \d+ status:"), infiniband.parse_ibstatus
    ),
    Kind("ibv_devinfo", _has(r"^hca_id:\s*\S+"), infiniband.parse_ibv_devinfo),
    Kind("lscpu -p", lscpu.is_lscpu_parsable, lscpu.parse_lscpu_parsable),
    Kind("lscpu", lscpu.is_lscpu, lscpu.parse_lscpu),
    Kind("lspci", pci.is_lspci, pci.parse_lspci),
    Kind("nvidia-smi --query-gpu csv", nvsmi_query.is_query_csv, nvsmi_query.parse_query_csv),
)


@dataclass(frozen=True, slots=True)
class Piece:
    """One recognised output: which kind, and where in which file."""

    source: str
    first_line: int
    kind: str


def split(text: Text) -> list[Text]:
    """Cut a file at capture banners, shell prompts and '# --- ... ---' rules."""
    pieces: list[Text] = []
    start = 0
    command: str | None = text.command
    lines = text.lines
    i = 0

    def close(end: int, next_command: str | None) -> None:
        nonlocal start, command
        if end > start:
            pieces.append(Text(text.source, lines[start:end], text.line_no(start), command))
        command = next_command

    while i < len(lines):
        line = lines[i]
        if _BANNER.match(line):
            j = i + 1
            hint = None
            while j < len(lines) and lines[j].startswith("#") and not _BANNER.match(lines[j]):
                if lines[j].startswith("# $ "):
                    hint = lines[j][4:].strip()
                j += 1
            if j < len(lines) and _BANNER.match(lines[j]):
                close(i, hint)
                i = start = j + 1
                continue
            close(i, None)
            i = start = j
            continue
        prompt = _PROMPT.match(line)
        rule = _COMMENT_RULE.match(line)
        if prompt or rule:
            close(i, prompt["cmd"] if prompt else (rule["what"] if rule else None))
            start = i + 1
        i += 1
    close(len(lines), None)
    return pieces


def parse_text(source: str, content: str) -> tuple[Facts, list[Piece]]:
    """Every output recognised in one file's content, parsed. ParseError propagates."""
    whole = strip_provenance(Text(source, clean_lines(content)))
    results: list[Facts] = []
    found: list[Piece] = []
    stripped = whole.body.lstrip()
    # XML and JSON documents are one piece: prompts inside them are data, not boundaries.
    pieces = [whole] if stripped.startswith(("<", "{")) else split(whole)
    for piece in pieces:
        if not any(line.strip() for line in piece.lines):
            continue
        for kind in KINDS:
            if kind.matches(piece):
                facts = kind.parse(piece)
                if len(pieces) > 1:
                    facts = _tag(facts, f"{source}:{piece.first_line}")
                results.append(facts)
                found.append(Piece(source, piece.first_line, kind.name))
                break
    if not found:
        results.append(Facts(notes=(Note(source, "no known command output recognised; skipped"),)))
    return merge_all(results), found


def _tag(facts: Facts, where: str) -> Facts:
    """Name each piece of a multi-output file apart, so its facts are told apart when merged."""
    return replace(
        facts,
        gpus=tuple(replace(g, source=where) for g in facts.gpus),
        mig_devices=tuple(replace(m, source=where) for m in facts.mig_devices),
    )


def read_file(path: Path) -> tuple[Facts, list[Piece]]:
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Facts(
                notes=(
                    Note(
                        source,
                        f"{size} bytes: larger than any command output Stratum reads; skipped",
                    ),
                )
            ), []
        data = path.read_bytes()
    except OSError as exc:
        return Facts(notes=(Note(source, f"cannot be read: {exc.strerror}"),)), []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        content = data.decode("utf-16", errors="replace")
    elif b"\0" in data[:4096]:
        return Facts(notes=(Note(source, "binary file; skipped"),)), []
    else:
        content = data.decode("utf-8", errors="replace")
    return parse_text(source, content)


def read_dir(path: Path) -> tuple[Facts, list[Piece]]:
    """Every file below `path` (a saved `sys/` tree is read as sysfs)."""
    results: list[Facts] = []
    found: list[Piece] = []
    sys_root = path / "sys"
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if sys_root in file.parents:
            continue
        facts, pieces = read_file(file)
        results.append(facts)
        found.extend(pieces)
    if sys_root.is_dir():
        facts = sysfs.read_sysfs(path)
        results.append(facts)
        if facts.sources:
            found.append(Piece(str(sys_root), 0, "sysfs"))
    return merge_all(results), found
