"""Parsers of `nvidia-smi mig -lgip` (the MIG profiles a GPU offers) and `-lgi` (instances).

`-lgipp` (placements) and `-lci` (compute instances) are recognised and add nothing the
profile keeps: their facts are the slice geometry, which the profile names already carry.
"""

from __future__ import annotations

import re

from stratum.discovery.sources import Facts, MigDeviceFact, MigProfileFact, ParseError, Text

# |   0  MIG 1g.10gb       19     7/7        9.75       No     16     1     0   |
_LGIP_ROW = re.compile(
    r"^\|\s*(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)/(\d+)\s+([0-9.]+)\s+(Yes|No)\s+(\d+)"
)
# |   0  MIG 1g.10gb         19        7          0:1     |
_LGI_ROW = re.compile(r"^\|\s*(\d+)\s+MIG\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+):(\d+)\s*\|")
_PROFILE = re.compile(r"^(?:[1-9]c\.)?([1-9])g\.[0-9]+gb")


def kind_of(text: Text) -> str | None:
    body = text.body
    if "GPU instance profiles:" in body:
        return "mig-lgip"
    if "GPU instances:" in body:
        return "mig-lgi"
    if "Compute instances:" in body:
        return "mig-lci"
    if re.search(r"^GPU\s+\d+ Profile ID\s+\d+ Placements?\s*:", body, re.MULTILINE):
        return "mig-lgipp"
    return None


def parse_lgip(text: Text) -> Facts:
    profiles: list[MigProfileFact] = []
    for i, line in enumerate(text.lines):
        if not re.match(r"^\|\s*\d+\s+MIG\s", line):
            continue
        row = _LGIP_ROW.match(line)
        if not row:
            raise ParseError(
                text.source,
                text.line_no(i),
                "a profile row: GPU, MIG <name>, ID, free/total instances, memory GiB, P2P, SMs",
                line.strip(),
            )
        name = row[2]
        slices = _PROFILE.match(name)
        if not slices:
            raise ParseError(text.source, text.line_no(i), "a MIG profile name like 1g.10gb", name)
        profiles.append(
            MigProfileFact(
                gpu=int(row[1]),
                name=name,
                slices=int(slices[1]),
                memory_gib=float(row[6]),
                max_instances=int(row[5]),
                sms=int(row[8]),
            )
        )
    if not profiles:
        raise ParseError(text.source, text.first_line, "rows of nvidia-smi mig -lgip")
    return Facts(mig_profiles=tuple(profiles), sources=(text.source,))


def parse_lgi(text: Text) -> Facts:
    devices: list[MigDeviceFact] = []
    for i, line in enumerate(text.lines):
        if not re.match(r"^\|\s*\d+\s+MIG\s", line):
            continue
        row = _LGI_ROW.match(line)
        if not row:
            raise ParseError(
                text.source,
                text.line_no(i),
                "an instance row: GPU, MIG <name>, profile ID, instance ID, start:size",
                line.strip(),
            )
        gpu = int(row[1])
        devices.append(
            MigDeviceFact(
                gpu=gpu,
                index=sum(d.gpu == gpu for d in devices),
                profile=row[2],
                source=text.source,
            )
        )
    return Facts(mig_devices=tuple(devices), sources=(text.source,))
