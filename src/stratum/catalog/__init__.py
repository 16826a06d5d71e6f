"""The sample catalog `stratum up` loads: workload and cluster templates that launch and
place on the demo fleet (src/stratum/testing/scenarios/demo-fleet.yaml)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from stratum.core.manifests import load_documents


def catalog_manifests() -> list[dict[str, Any]]:
    """Every template of the sample catalog, as wire objects ready to apply."""
    docs: list[dict[str, Any]] = []
    folder = resources.files("stratum.catalog")
    for name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml")):
        text = folder.joinpath(name).read_text(encoding="utf-8")
        docs += [d.data for d in load_documents(text, f"catalog/{name}")]
    return docs
