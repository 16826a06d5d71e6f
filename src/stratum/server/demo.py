"""The demo fleet that `stratum up` (and tests, and users' own experiments) start from."""

from __future__ import annotations

from importlib import resources
from typing import Any

from stratum.core.manifests import load_documents
from stratum.core.profiles import builtin_profiles
from stratum.core.validation import to_wire


def demo_manifests() -> list[dict[str, Any]]:
    """Built-in hardware profiles, then the demo's sites, clusters, tenants, catalog and work."""
    text = (
        resources.files("stratum.server")
        .joinpath("scenarios/demo-fleet.yaml")
        .read_text(encoding="utf-8")
    )
    docs = [d.data for d in load_documents(text, "demo-fleet.yaml")]
    return [to_wire(p) for p in builtin_profiles()] + docs
