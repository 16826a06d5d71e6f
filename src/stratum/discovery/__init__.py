"""Hardware discovery: turn a host, or saved outputs of its tools, into a HardwareProfile.

    discover_host()  -> this machine (nvidia-smi or NVML, lscpu, numactl, sysfs, ibstat)
    discover_dir(p)  -> saved outputs in a directory, recognised by content

Each source has its own parser module; `assemble` reconciles what they say. Nothing here
touches the store.
"""

from __future__ import annotations

from pathlib import Path

from stratum.discovery.assemble import Discovery, assemble
from stratum.discovery.sources import Note, ParseError

__all__ = ["Discovery", "Note", "ParseError", "assemble", "discover_dir", "discover_this_host"]


def discover_dir(path: Path, *, name: str | None = None) -> Discovery:
    """The profile of the machine whose saved outputs are in `path` (a file or a directory)."""
    from stratum.discovery.recognise import read_dir, read_file

    facts, _ = read_dir(path) if path.is_dir() else read_file(path)
    return assemble(
        facts,
        name=name or _name(facts.hostname, path.name),
        description=f"discovered from saved outputs in {path.name}",
    )


def discover_this_host(*, name: str | None = None, save_to: Path | None = None) -> Discovery:
    from stratum.discovery.host import discover_host

    facts = discover_host(save_to=save_to)
    return assemble(
        facts,
        name=name or _name(facts.hostname, "host"),
        description=f"discovered on {facts.hostname or 'this host'}",
    )


def _name(hostname: str | None, fallback: str) -> str:
    """A DNS-1123 object name from a host name."""
    import re

    base = (hostname or fallback).lower().split(".")[0]
    base = re.sub(r"[^a-z0-9-]+", "-", base).strip("-")[:63].strip("-")
    return base or "discovered"
