"""Seeded arrivals and faults on the demo fleet: workloads of varied contract shapes, and
faults aimed at the nodes, GPUs and sites that exist."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from stratum.backends.launching import DURATION_ANNOTATION
from stratum.client.http import StratumClient

# The shapes a campaign draws from, with weights: what tenants of the demo fleet ask for.
SHAPES: dict[str, float] = {
    "single-gpu": 3.0,
    "fraction": 3.0,
    "mig": 2.0,
    "nvlink-8": 1.0,
    "gang": 1.5,
    "eu-personal": 1.0,
    "cpu": 0.5,
}


def workload(name: str, shape: str, rng: random.Random, *, duration: float) -> dict[str, Any]:
    """A Workload manifest of one shape; `duration` in simulated seconds (then it ends)."""
    namespace = "research"
    replicas = 1
    contract: dict[str, Any]
    kind = "batch"
    if shape == "single-gpu":
        contract = {"compute": {"gpus": 1, "cpuCores": 4, "memoryGiB": 16}}
        if rng.random() < 0.3:
            contract["sovereignty"] = {"countries": ["US"]}
    elif shape == "fraction":
        contract = {"compute": {"gpuMilli": rng.choice([100, 250, 333, 500, 750]), "cpuCores": 1}}
        kind = "inference"
    elif shape == "mig":
        contract = {
            "compute": {
                "migProfile": rng.choice(["1g.10gb", "2g.20gb", "3g.40gb"]),
                "models": ["A100-SXM4-80GB"],
            },
            "lifecycle": {"preemptible": True, "priority": -10},
        }
    elif shape == "nvlink-8":
        contract = {
            "compute": {"gpus": 8, "models": ["H100-SXM5-80GB"], "cpuCores": 32},
            "topology": {"withinReplica": "nvlink"},
            "sovereignty": {"jurisdictions": ["EU"]},
            "lifecycle": {"priority": 100, "onViolation": "replace"},
        }
        kind = "training"
    elif shape == "gang":
        replicas = rng.choice([2, 3])
        contract = {
            "compute": {"gpus": rng.choice([1, 2]), "cpuCores": 2},
            "availability": {"spreadAcross": "node", "minDomains": replicas},
            "lifecycle": {"onViolation": rng.choice(["replace", "report"])},
        }
        kind = "finetune"
    elif shape == "eu-personal":
        namespace = "health-eu"
        contract = {
            "compute": {"gpuMilli": 500, "minGpuMemoryGiB": 20},
            "sovereignty": {"jurisdictions": ["EU"], "dataClassification": "personal"},
            "isolation": "dedicated-node",
        }
        kind = "inference"
    elif shape == "cpu":
        contract = {"compute": {"cpuCores": 2, "memoryGiB": 4}}
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return {
        "apiVersion": "stratum.dev/v1alpha1",
        "kind": "Workload",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"campaign.stratum.dev/shape": shape},
            "annotations": {DURATION_ANNOTATION: f"{duration:.0f}"},
        },
        "spec": {
            "type": kind,
            "replicas": replicas,
            "run": {"image": "ghcr.io/example/campaign:1"},
            "contract": contract,
        },
    }


def draw_shape(rng: random.Random) -> str:
    names = list(SHAPES)
    return rng.choices(names, weights=[SHAPES[n] for n in names])[0]


@dataclass(frozen=True, slots=True)
class FleetMap:
    """The nodes (with GPU counts) and sites a fault can be aimed at."""

    gpus: dict[str, int]
    sites: tuple[str, ...]

    @classmethod
    def from_nodes(cls, nodes: list[dict[str, Any]]) -> FleetMap:
        gpus = {
            n["metadata"]["name"]: len((n.get("status") or {}).get("gpus") or []) for n in nodes
        }
        sites = tuple(sorted({n["spec"]["site"] for n in nodes}))
        return cls(gpus=gpus, sites=sites)


def fault(rng: random.Random, fleet: FleetMap) -> dict[str, Any]:
    """One fault the simulator accepts, aimed at a node, GPU or site of this fleet."""
    kind = rng.choices(
        ["gpu-fail", "node-down", "power-cap", "link-degrade"], weights=[4, 2, 1, 1]
    )[0]
    with_gpus = sorted(n for n, k in fleet.gpus.items() if k > 0)
    node = rng.choice(with_gpus)
    if kind == "gpu-fail":
        return {"kind": kind, "node": node, "gpu": rng.randrange(fleet.gpus[node])}
    if kind == "link-degrade":
        return {"kind": kind, "node": node, "gpu": rng.randrange(fleet.gpus[node])}
    if kind == "node-down":
        return {"kind": kind, "node": node}
    return {"kind": kind, "site": rng.choice(fleet.sites), "kw": rng.choice([1.0, 5.0, 20.0])}


def wait_for_fleet(client: StratumClient, timeout: float = 60.0) -> FleetMap:
    """The fleet's map once every node has reported its GPUs (the campaigns start there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = client.list("Node")
        if nodes and all((n.get("status") or {}).get("gpus") for n in nodes):
            return FleetMap.from_nodes(nodes)
        time.sleep(0.5)
    raise RuntimeError("the simulated fleet never showed up")
