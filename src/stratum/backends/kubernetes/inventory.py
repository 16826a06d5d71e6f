"""A Kubernetes Node (and the DRA ResourceSlices published for it) as a Stratum node.

Pure: the backend lists the objects, this module reads them. What a Node says is read from
the places Kubernetes and NVIDIA's operators put it:

- CPU and memory: `status.allocatable` (what pods may use, not the machine's size; the
  socket and NUMA layout is not in any Kubernetes object, so it stays unknown);
- GPUs: the devices of ResourceSlices for the node (driver `gpu.nvidia.com` by default:
  index, uuid, productName, pcieBusID, memory), else the device plugin's
  `nvidia.com/gpu` count with the GPU Feature Discovery labels (discovery/k8s_labels.py);
  MIG devices from GFD's labels or `nvidia.com/mig-*` resources;
- zone and region: the well-known `topology.kubernetes.io/zone` and `/region` labels;
- rack and NVLink domain: operator labels (no Kubernetes or NVIDIA label says them):
  `stratum.dev/rack`, `stratum.dev/nvlink-domain` (every GPU of the node is in that NVLink
  domain; the same value on several nodes of one rack with `stratum.dev/nvlink-scope: rack`
  is a rack-scale domain) or GFD's `nvidia.com/gpu.clique` (multi-node NVLink);
- `stratum.dev/pool: P` on a Node takes the topology of the Cluster's node pool P (its
  HardwareProfile) instead: what labels cannot say (NUMA, PCIe switches, NICs) comes from it.

Nothing is guessed: what no source says is left unknown and listed in `notes`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stratum.api.v1alpha1.hardwareprofiles import HardwareProfileSpec, NvlinkFabricSpec
from stratum.backends.base import DeviceHealth, PoolRequest
from stratum.discovery.assemble import assemble
from stratum.discovery.k8s_labels import parse_labels
from stratum.discovery.sources import CpuFact, Facts, GpuFact, Note, Text

GPU_DRIVER = "gpu.nvidia.com"
RACK_LABEL = "stratum.dev/rack"
POOL_LABEL = "stratum.dev/pool"
NVLINK_DOMAIN_LABEL = "stratum.dev/nvlink-domain"
NVLINK_SCOPE_LABEL = "stratum.dev/nvlink-scope"
CLIQUE_LABEL = "nvidia.com/gpu.clique"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024.0,
    "Mi": 1024.0**2,
    "Gi": 1024.0**3,
    "Ti": 1024.0**4,
}


def quantity(text: str | int | float | None) -> float | None:
    """A Kubernetes quantity ("7600m", "512Gi", "8") as a number; None if unreadable."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return float(text)
    match = _QUANTITY.match(text.strip())
    if not match or match[2] not in _UNITS:
        return None
    return float(match[1]) * _UNITS[match[2]]


@dataclass(frozen=True, slots=True)
class Device:
    """One DRA device of a node: what a ResourceClaim selector and an allocation name."""

    driver: str
    pool: str
    name: str
    index: int
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class NodeReading:
    """One Kubernetes Node as Stratum sees it."""

    k8s_name: str
    hardware: HardwareProfileSpec
    rack: str
    pool: str
    profile: str
    labels: Mapping[str, str]
    devices: Mapping[int, Device] = field(default_factory=dict)  # GPU index -> DRA device
    ready: bool = True
    notes: tuple[str, ...] = ()

    @property
    def dra(self) -> bool:
        return bool(self.devices)


def _attr(device: Mapping[str, Any], name: str) -> Any:
    value = (device.get("attributes") or {}).get(name) or {}
    for kind in ("int", "string", "bool", "version"):
        if kind in value:
            return value[kind]
    return None


def slice_devices(slices: Sequence[Mapping[str, Any]], node: str, driver: str) -> list[Device]:
    """The GPU devices (type gpu, not MIG) that ResourceSlices publish for `node`."""
    found: list[Device] = []
    for s in slices:
        spec = s.get("spec") or {}
        if spec.get("nodeName") != node or spec.get("driver") != driver:
            continue
        pool = (spec.get("pool") or {}).get("name", node)
        for d in spec.get("devices") or []:
            index = _attr(d, "index")
            kind = _attr(d, "type")
            if not isinstance(index, int) or kind not in (None, "gpu"):
                continue
            uuid = _attr(d, "uuid")
            found.append(Device(driver, pool, d["name"], index, uuid if uuid else None))
    return sorted(found, key=lambda d: d.index)


def device_health(
    reading: NodeReading, slices: Sequence[Mapping[str, Any]]
) -> dict[int, DeviceHealth]:
    """Per GPU of a DRA node, its health as its driver's ResourceSlices say now (DRA device
    taints, KEP-5055): a NoExecute taint (pods using the device are evicted) is Failed; a
    NoSchedule taint (kept from new claims) or a None one (a driver's warning, such as
    degraded health) is Degraded; a device its driver no longer publishes is Unknown; an
    untainted one Healthy. Empty for a device-plugin node: no object names its sick GPU."""
    if not reading.dra:
        return {}
    published: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for s in slices:
        spec = s.get("spec") or {}
        if spec.get("nodeName") != reading.k8s_name:
            continue
        pool = (spec.get("pool") or {}).get("name", reading.k8s_name)
        for d in spec.get("devices") or []:
            published[(str(spec.get("driver")), pool, str(d.get("name")))] = d.get("taints") or []
    out: dict[int, DeviceHealth] = {}
    for index, device in reading.devices.items():
        taints = published.get((device.driver, device.pool, device.name))
        if taints is None:
            out[index] = "Unknown"
        elif any(t.get("effect") == "NoExecute" for t in taints):
            out[index] = "Failed"
        else:
            out[index] = "Degraded" if taints else "Healthy"
    return out


def _device_facts(slices: Sequence[Mapping[str, Any]], node: str, driver: str) -> list[GpuFact]:
    facts = []
    for s in slices:
        spec = s.get("spec") or {}
        if spec.get("nodeName") != node or spec.get("driver") != driver:
            continue
        for d in spec.get("devices") or []:
            index = _attr(d, "index")
            if not isinstance(index, int) or _attr(d, "type") not in (None, "gpu"):
                continue
            memory = quantity(((d.get("capacity") or {}).get("memory") or {}).get("value"))
            facts.append(
                GpuFact(
                    f"ResourceSlice/{s['metadata']['name']}",
                    index=index,
                    product_name=_attr(d, "productName"),
                    uuid=_attr(d, "uuid"),
                    pci_bus_id=(_attr(d, "pcieBusID") or None),
                    memory_mib=memory / 1024**2 if memory else None,
                    architecture=_attr(d, "architecture"),
                )
            )
    return facts


def _label_facts(name: str, labels: Mapping[str, str]) -> Facts:
    gpu_labels = {k: v for k, v in labels.items() if k.startswith("nvidia.com/")}
    if "nvidia.com/gpu.product" not in gpu_labels:
        return Facts()
    if not gpu_labels.get("nvidia.com/gpu.count", "").isdigit():
        return Facts(notes=(Note(f"Node/{name}", "nvidia.com/gpu.count is not a number"),))
    return parse_labels(Text.of(f"Node/{name} labels", json.dumps(gpu_labels)))


def read_node(
    node: Mapping[str, Any],
    slices: Sequence[Mapping[str, Any]],
    pools: Mapping[str, PoolRequest],
    driver: str = GPU_DRIVER,
) -> NodeReading:
    """One Node (a `kubectl get node -o json` object) and the cluster's ResourceSlices."""
    meta = node.get("metadata") or {}
    name: str = meta["name"]
    labels: dict[str, str] = dict(meta.get("labels") or {})
    status = node.get("status") or {}
    allocatable: dict[str, str] = dict(status.get("allocatable") or {})
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    devices = {d.index: d for d in slice_devices(slices, name, driver)}
    rack = labels.get(RACK_LABEL, "")
    notes: list[str] = []
    if not rack:
        notes.append(f"no {RACK_LABEL} label: rack unknown")
    pool = pools.get(labels.get(POOL_LABEL, ""))
    out_labels = {k: labels[k] for k in (ZONE_LABEL, REGION_LABEL) if k in labels}
    if pool is not None:
        # The operator says which HardwareProfile this machine is: its topology is known.
        return NodeReading(
            name, pool.hardware, rack, pool.name, pool.profile, out_labels, devices, ready
        )
    facts = _label_facts(name, labels)
    dev_facts = _device_facts(slices, name, driver)
    if dev_facts:
        # The driver's devices are the truth about which GPUs exist; labels add the model
        # and memory where a device does not say them.
        by_label = {g.index: g for g in facts.gpus}
        merged = []
        for g in dev_facts:
            label = by_label.get(g.index)
            merged.append(
                GpuFact(
                    g.source,
                    index=g.index,
                    product_name=g.product_name or (label.product_name if label else None),
                    uuid=g.uuid,
                    pci_bus_id=g.pci_bus_id,
                    memory_mib=g.memory_mib or (label.memory_mib if label else None),
                    architecture=g.architecture,
                    mig_capable=label.mig_capable if label else None,
                    mig_enabled=label.mig_enabled if label else None,
                )
            )
        facts = Facts(
            gpus=tuple(merged),
            mig_devices=facts.mig_devices,
            notes=facts.notes,
            sources=facts.sources,
        )
    else:
        count = int(quantity(allocatable.get("nvidia.com/gpu")) or 0)
        if count and len(facts.gpus) != count:
            product = facts.gpus[0].product_name if facts.gpus else None
            facts = Facts(
                gpus=tuple(
                    GpuFact(f"Node/{name} allocatable", index=i, product_name=product)
                    for i in range(count)
                ),
                mig_devices=facts.mig_devices,
                notes=facts.notes,
                sources=facts.sources,
            )
        if count or facts.gpus:
            notes.append(
                "no ResourceSlice for this node: GPUs from the device plugin; the kubelet "
                "chooses which device a pod gets"
            )
    cpus = quantity(allocatable.get("cpu"))
    memory = quantity(allocatable.get("memory"))
    facts = Facts(
        gpus=facts.gpus,
        mig_devices=facts.mig_devices,
        cpus=(
            CpuFact(
                f"Node/{name} allocatable",
                architecture=labels.get("kubernetes.io/arch"),
                logical_cpus=int(cpus) if cpus else None,
                sockets=1 if cpus else None,
                cores_per_socket=int(cpus) if cpus else None,
                threads_per_core=1 if cpus else None,
            ),
        )
        if cpus
        else (),
        memory_mib=memory / 1024**2 if memory else None,
        notes=facts.notes,
        sources=facts.sources,
    )
    if cpus:
        notes.append("socket and NUMA layout unknown: allocatable CPUs counted as one socket")
    discovery = assemble(facts, name=name)
    notes += [n.message for n in discovery.notes if "no GPU found" not in n.message]
    hw = discovery.profile.spec
    hw = _with_nvlink(hw, labels, notes)
    return NodeReading(
        name, hw, rack, "", "", out_labels, devices, ready, tuple(dict.fromkeys(notes))
    )


def _with_nvlink(
    hw: HardwareProfileSpec, labels: Mapping[str, str], notes: list[str]
) -> HardwareProfileSpec:
    domain = labels.get(NVLINK_DOMAIN_LABEL) or labels.get(CLIQUE_LABEL)
    if not hw.gpus:
        return hw
    if not domain:
        notes.append(f"no {NVLINK_DOMAIN_LABEL} label: NVLink unknown, GPUs taken as PCIe only")
        return hw
    rack_scope = labels.get(NVLINK_SCOPE_LABEL) == "rack" or (
        CLIQUE_LABEL in labels and NVLINK_DOMAIN_LABEL not in labels
    )
    indices = [g.index for g in hw.gpus]
    gpus = [
        g.model_copy(
            update={
                "nvlink_domain": domain,
                "nvlink_peers": [i for i in indices if i != g.index],
            }
        )
        for g in hw.gpus
    ]
    fabric = NvlinkFabricSpec(
        kind="nvswitch",
        scope="rack" if rack_scope else "node",
        domain_gpus=len(gpus),
        domain_nodes=1,
    )
    return hw.model_copy(update={"gpus": gpus, "nvlink": fabric})
