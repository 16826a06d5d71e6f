"""Built-in HardwareProfiles: they load, validate, cite their sources and match the examples."""

from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from stratum.core.gpucatalog import find_model
from stratum.core.profiles import builtin_profiles, get_builtin_profile
from stratum.core.topology import Topology

REPO = Path(__file__).resolve().parents[3]
REAL = [
    "hgx-a100-80gb",
    "hgx-h100-80gb",
    "hgx-h200-141gb",
    "gb200-nvl72-tray",
    "pcie-l40s-8gpu",
    "pcie-l4-4gpu",
    "edge-l4-1gpu",
    "cpu-only-2s-epyc",
]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen", REPO / "scripts/gen_builtin_profiles.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_machines_are_built_in() -> None:
    names = [p.metadata.name for p in builtin_profiles()]
    assert names[: len(REAL)] == REAL
    assert len(names) == len(set(names))


def test_every_profile_is_consistent() -> None:
    for profile in builtin_profiles():
        topo = Topology.from_spec(profile.spec)
        assert topo.inconsistencies() == [], profile.metadata.name
        devices, classes = topo.link_matrix()
        assert all(
            classes[i][j] == classes[j][i] for i in range(len(devices)) for j in range(len(devices))
        )


@pytest.mark.parametrize(
    ("name", "gpus", "model", "nvlink"),
    [
        ("hgx-a100-80gb", 8, "A100-SXM4-80GB", "nvswitch"),
        ("hgx-h100-80gb", 8, "H100-SXM5-80GB", "nvswitch"),
        ("hgx-h200-141gb", 8, "H200-SXM-141GB", "nvswitch"),
        ("gb200-nvl72-tray", 4, "GB200-186GB", "nvswitch"),
        ("pcie-l40s-8gpu", 8, "L40S-48GB", None),
        ("pcie-l4-4gpu", 4, "L4-24GB", None),
        ("edge-l4-1gpu", 1, "L4-24GB", None),
        ("cpu-only-2s-epyc", 0, None, None),
    ],
)
def test_machine(name: str, gpus: int, model: str | None, nvlink: str | None) -> None:
    spec = get_builtin_profile(name).spec
    assert len(spec.gpus) == gpus
    assert {g.model for g in spec.gpus} == ({model} if model else set())
    assert (spec.nvlink.kind if spec.nvlink else None) == nvlink
    assert spec.power.max_w > spec.power.idle_w > 0
    assert spec.memory_gib == sum(n.memory_gib for s in spec.sockets for n in s.numa_nodes)
    for g in spec.gpus:
        assert g.numa_node is not None and g.power_w and g.memory_gib > 0


def test_nvl72_is_a_rack_scale_domain_of_18_trays() -> None:
    spec = get_builtin_profile("gb200-nvl72-tray").spec
    assert spec.nvlink is not None
    assert (spec.nvlink.scope, spec.nvlink.domain_gpus, spec.nvlink.domain_nodes) == (
        "rack",
        72,
        18,
    )
    assert spec.nvlink.domain_gpus == spec.nvlink.domain_nodes * len(spec.gpus)
    assert spec.architecture == "aarch64"


def test_examples_file_and_package_data_are_the_generators_output() -> None:
    gen = generator()
    for path, text in gen.outputs().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run the generator"


def test_every_real_machine_cites_a_public_spec_sheet() -> None:
    text = (REPO / "examples/02-hardwareprofiles.yaml").read_text(encoding="utf-8")
    blocks = text.split("\n---\n")[1:]
    for block in blocks:
        name = yaml.safe_load(block)["metadata"]["name"]
        comments = [line for line in block.splitlines() if line.startswith("#")]
        assert any(re.search(r"https://\S+", c) for c in comments), name


def test_alibaba_trace_shapes_are_all_covered() -> None:
    shapes = list(csv.DictReader((REPO / "scripts/openb_node_shapes.csv").read_text().splitlines()))
    trace = Path("/work/shared/data/alibaba-openb/openb_node_list_gpu_node.csv")
    if trace.exists():
        rows = list(csv.DictReader(trace.read_text().splitlines()))
        assert sum(int(s["nodes"]) for s in shapes) == len(rows)
        assert {s["model"] for s in shapes} == {r["model"] for r in rows}
    by_name = {p.metadata.name: p for p in builtin_profiles()}
    for s in shapes:
        name = (
            f"openb-{s['model'].lower()}-{s['gpus']}gpu-{s['vcpus']}c-"
            f"{int(int(s['memory_mib']) / 1024)}g"
        )
        profile = by_name[name]
        assert len(profile.spec.gpus) == int(s["gpus"])
        assert {g.model for g in profile.spec.gpus} == {s["model"]}
        assert profile.spec.sockets[0].cores == int(s["vcpus"])
        assert profile.metadata.labels["stratum.dev/source"] == "alibaba-openb"


def test_catalog_names_real_products() -> None:
    cases = {
        "NVIDIA H100 80GB HBM3": "H100-SXM5-80GB",
        "NVIDIA A100-SXM4-40GB": "A100-SXM4-40GB",
        "Tesla P100-PCIE-16GB": "P100-PCIE-16GB",
        "NVIDIA GeForce RTX 4090": "RTX4090-24GB",
        "NVIDIA-H100-80GB-HBM3": "H100-SXM5-80GB",
        "A100-SXM4-40GB-MIG-1g.5gb": "A100-SXM4-40GB",
        "NVIDIA L40S": "L40S-48GB",
        "NVIDIA L4": "L4-24GB",
        "NVIDIA A10": "A10-24GB",
        "Tesla T4": "T4-16GB",
        "NVIDIA H200": "H200-SXM-141GB",
    }
    for product, model in cases.items():
        found = find_model(product)
        assert found is not None and found.model == model, product
    assert find_model("NVIDIA A100 80GB PCIe") is not None
    assert find_model("NVIDIA A10G") is None  # a different board: not mistaken for an A10
    assert find_model("NVIDIA Zeta 9000") is None
