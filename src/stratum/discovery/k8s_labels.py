"""Parser of Kubernetes node labels written by NVIDIA GPU Feature Discovery (and NFD).

The input is a JSON object of labels (`kubectl get node -o json | jq .metadata.labels`),
possibly embedded in documentation that shows several such objects; the last one wins.
Under the MIG "single" strategy GFD overwrites gpu.product, gpu.count and gpu.memory with
the MIG device's: the GPU model is recovered from the product name
("A100-SXM4-40GB-MIG-1g.5gb"), but no label counts the physical GPUs, so one is reported
with a note. The label reference (GFD's README tables) is recognised too, as documentation.
"""

from __future__ import annotations

import json
import re

from stratum.discovery.sources import Facts, GpuFact, MigDeviceFact, Note, ParseError, Text

_MIG_COUNT = re.compile(r"^nvidia\.com/mig-([0-9]g\.[0-9]+gb)\.count$")


def is_label_json(text: Text) -> bool:
    return '"nvidia.com/gpu.' in text.body or '"feature.node.kubernetes.io/' in text.body


def is_label_reference(text: Text) -> bool:
    return bool(re.search(r"^\|\s*nvidia\.com/gpu\.count\s*\|", text.body, re.MULTILINE))


def parse_label_reference(text: Text) -> dict[str, str]:
    """Label key -> meaning, from the markdown tables of the GFD documentation."""
    keys: dict[str, str] = {}
    for line in text.lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("nvidia.com/"):
            key = cells[0].split(" ")[0].replace("\\_", "_")
            keys[key] = cells[2]
    if not keys:
        raise ParseError(text.source, text.first_line, "a markdown table of nvidia.com/ labels")
    return keys


def _objects(text: Text) -> list[tuple[int, dict[str, str]]]:
    """Every top-level JSON object of labels in the text, with the line it starts on."""
    found: list[tuple[int, dict[str, str]]] = []
    start = next((i for i, line in enumerate(text.lines) if line.strip()), 0)
    if text.lines and text.lines[start].lstrip().startswith("{"):
        # A JSON document on its own (kubectl ... | jq): parse it whole.
        try:
            whole = json.loads("\n".join(text.lines[start:]))
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            return [(text.line_no(start), {str(k): str(v) for k, v in whole.items()})]
    i = 0
    lines = text.lines
    while i < len(lines):
        if lines[i].strip() != "{":
            i += 1
            continue
        depth, j = 0, i
        while j < len(lines):
            depth += lines[j].count("{") - lines[j].count("}")
            if depth <= 0:
                break
            j += 1
        chunk = "\n".join(lines[i : j + 1])
        try:
            value = json.loads(chunk)
        except json.JSONDecodeError as exc:
            raise ParseError(
                text.source,
                text.line_no(i) + exc.lineno - 1,
                "a JSON object of node labels",
                exc.msg,
            ) from None
        if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            found.append((text.line_no(i), {str(k): v for k, v in value.items()}))
        i = j + 1
    return found


def parse_labels(text: Text) -> Facts:
    objects = _objects(text)
    if not objects:
        raise ParseError(text.source, text.first_line, "a JSON object of node labels")
    line, labels = objects[-1]
    notes: list[Note] = []
    if len(objects) > 1:
        notes.append(Note(text.source, f"{len(objects)} label sets; read the last, at line {line}"))
    product = labels.get("nvidia.com/gpu.product")
    count_text = labels.get("nvidia.com/gpu.count", "")
    if product is None:
        return Facts(
            notes=(Note(text.source, "no nvidia.com/gpu.product label: no GPU described", line),),
            sources=(text.source,),
        )
    if not count_text.isdigit():
        raise ParseError(text.source, line, "a number in nvidia.com/gpu.count", count_text)
    count = int(count_text)
    memory = labels.get("nvidia.com/gpu.memory")
    strategy = labels.get("nvidia.com/mig.strategy")
    single_mig = re.search(r"-MIG-([0-9]g\.[0-9]+gb)$", product)
    migs: list[MigDeviceFact] = []
    if single_mig:
        # gpu.count counts MIG devices and gpu.memory is one device's: the GPUs themselves
        # are not counted by any label.
        notes.append(
            Note(
                text.source,
                f"MIG single strategy: {count} x {single_mig[1]} MIG "
                "devices; the number of physical GPUs is not in the labels, reported "
                "as 1",
                line,
            )
        )
        migs = [
            MigDeviceFact(gpu=0, index=k, profile=single_mig[1], source=text.source)
            for k in range(count)
        ]
        count, memory = 1, None
    else:
        k = 0
        for key, value in sorted(labels.items()):
            match = _MIG_COUNT.match(key)
            if match and value.isdigit():
                for _ in range(int(value)):
                    migs.append(MigDeviceFact(gpu=0, index=k, profile=match[1], source=text.source))
                    k += 1
        if migs and count > 1:
            notes.append(
                Note(
                    text.source,
                    "mixed-strategy MIG labels do not say which GPU "
                    "holds which MIG device; all are attributed to GPU 0",
                    line,
                )
            )
    capable = labels.get("nvidia.com/mig.capable")
    gpus = tuple(
        GpuFact(
            text.source,
            index=k,
            product_name=product.removesuffix(f"-MIG-{single_mig[1]}" if single_mig else ""),
            memory_mib=float(memory) if memory and memory.isdigit() else None,
            mig_capable=True
            if capable == "true" or migs
            else (False if capable == "false" else None),
            mig_enabled=bool(migs) if strategy is not None else None,
        )
        for k in range(count)
    )
    hostname = labels.get("kubernetes.io/hostname")
    return Facts(
        gpus=gpus,
        mig_devices=tuple(migs),
        notes=tuple(notes),
        hostname=hostname,
        sources=(text.source,),
    )
