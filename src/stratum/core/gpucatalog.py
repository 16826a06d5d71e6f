"""What Stratum knows about GPU models: canonical names, memory, NVLink, power, MIG profiles.

AMD Instinct models sit beside NVIDIA's: their Infinity Fabric (xGMI) links fill the NVLink
fields (the intra-node GPU fabric, `interconnect="xGMI"`), and their compute and memory
partition modes (SPX..CPX, NPS1/NPS4) are listed where NVIDIA's MIG profiles are.

Discovery reads a product name ("NVIDIA H100 80GB HBM3", "Tesla P100-PCIE-16GB",
"NVIDIA-H100-80GB-HBM3" from a Kubernetes label) and looks it up here to fill the facts the
driver does not print (NVLink bandwidth per link, idle power, the MIG profiles the GPU offers).
Figures come from NVIDIA's public datasheets and the MIG user guide
(https://docs.nvidia.com/datacenter/tesla/mig-user-guide/); idle power is a typical reading,
not a datasheet figure, and only feeds power estimates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MigProfile:
    name: str
    slices: int
    memory_gib: float
    max_instances: int
    sms: int = 0  # streaming multiprocessors; 0 where the guide does not list them


@dataclass(frozen=True, slots=True)
class GpuModel:
    model: str  # canonical name used on the wire
    family: str
    architecture: str
    memory_gib: float
    tdp_w: float
    idle_w: float
    pcie_gen: int
    nvlink_links: int = 0  # NVLinks per GPU on the SXM/NVL form factor
    nvlink_gbps_per_link: float = 0.0  # GB/s per link and direction
    mig_profiles: tuple[MigProfile, ...] = ()
    mig_capable: bool = False
    pci_device_ids: tuple[str, ...] = ()  # lowercase hex, of pci_vendor
    patterns: tuple[str, ...] = ()  # regexes over the normalised product name
    vendor: str = "NVIDIA"
    pci_vendor: str = "10de"
    interconnect: str = "NVLink"  # what nvlink_links count: NVLink, or xGMI on AMD
    partitions: tuple[str, ...] = ()  # AMD compute and memory partition modes


def _mig(*rows: tuple[str, int, float, int], sms: tuple[int, ...] = ()) -> tuple[MigProfile, ...]:
    counts = sms or (0,) * len(rows)
    return tuple(MigProfile(n, s, m, i, c) for (n, s, m, i), c in zip(rows, counts, strict=True))


# MIG tables: name, compute slices, memory GiB (as `nvidia-smi mig -lgip` prints), max instances.
_MIG_A100_40 = _mig(
    ("1g.5gb", 1, 4.75, 7),
    ("1g.10gb", 1, 9.62, 4),
    ("2g.10gb", 2, 9.62, 3),
    ("3g.20gb", 3, 19.62, 2),
    ("4g.20gb", 4, 19.62, 1),
    ("7g.40gb", 7, 39.38, 1),
    sms=(14, 14, 28, 42, 56, 98),
)
_MIG_A100_80 = _mig(
    ("1g.10gb", 1, 9.5, 7),
    ("1g.20gb", 1, 19.5, 4),
    ("2g.20gb", 2, 19.5, 3),
    ("3g.40gb", 3, 39.25, 2),
    ("4g.40gb", 4, 39.25, 1),
    ("7g.80gb", 7, 79.0, 1),
    sms=(14, 14, 28, 42, 56, 98),
)
_MIG_H100_80 = _mig(
    ("1g.10gb", 1, 9.75, 7),
    ("1g.20gb", 1, 19.62, 4),
    ("2g.20gb", 2, 19.62, 3),
    ("3g.40gb", 3, 39.5, 2),
    ("4g.40gb", 4, 39.5, 1),
    ("7g.80gb", 7, 79.25, 1),
    sms=(16, 26, 32, 60, 64, 132),
)
# H100 PCIe: same profiles; its SM counts per profile differ (114 SMs in all) and are not listed.
_MIG_H100_PCIE = tuple(
    MigProfile(p.name, p.slices, p.memory_gib, p.max_instances) for p in _MIG_H100_80
)
_MIG_H100_94 = _mig(
    ("1g.12gb", 1, 10.75, 7),
    ("1g.24gb", 1, 21.75, 4),
    ("2g.24gb", 2, 21.75, 3),
    ("3g.47gb", 3, 46.38, 2),
    ("4g.47gb", 4, 46.38, 1),
    ("7g.94gb", 7, 93.0, 1),
)
_MIG_H200 = _mig(
    ("1g.18gb", 1, 16.0, 7),
    ("1g.35gb", 1, 32.5, 4),
    ("2g.35gb", 2, 32.5, 3),
    ("3g.71gb", 3, 69.75, 2),
    ("4g.71gb", 4, 69.75, 1),
    ("7g.141gb", 7, 139.75, 1),
)
_MIG_B200 = _mig(
    ("1g.23gb", 1, 21.5, 7),
    ("1g.45gb", 1, 44.0, 4),
    ("2g.45gb", 2, 44.0, 3),
    ("3g.90gb", 3, 88.5, 2),
    ("4g.90gb", 4, 88.5, 1),
    ("7g.180gb", 7, 177.5, 1),
)
_MIG_A30 = _mig(("1g.6gb", 1, 5.81, 4), ("2g.12gb", 2, 11.69, 2), ("4g.24gb", 4, 23.5, 1))

CATALOG: tuple[GpuModel, ...] = (
    # https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf
    GpuModel(
        "A100-SXM4-80GB",
        "A100",
        "Ampere",
        80,
        400,
        60,
        4,
        12,
        25.0,
        _MIG_A100_80,
        True,
        ("20b2", "20b3"),
        (r"A100-SXM4?-80GB", r"A100-80GB-SXM"),
    ),
    GpuModel(
        "A100-SXM4-40GB",
        "A100",
        "Ampere",
        40,
        400,
        55,
        4,
        12,
        25.0,
        _MIG_A100_40,
        True,
        ("20b0",),
        (r"A100-SXM4?-40GB", r"A100-40GB-SXM"),
    ),
    GpuModel(
        "A100-PCIE-80GB",
        "A100",
        "Ampere",
        80,
        300,
        45,
        4,
        12,
        25.0,
        _MIG_A100_80,
        True,
        ("20b5",),
        (r"A100-80GB-PCIE", r"A100-PCIE-80GB"),
    ),
    GpuModel(
        "A100-PCIE-40GB",
        "A100",
        "Ampere",
        40,
        250,
        40,
        4,
        12,
        25.0,
        _MIG_A100_40,
        True,
        ("20f1",),
        (r"A100-PCIE-40GB", r"A100-40GB-PCIE"),
    ),
    # https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet
    GpuModel(
        "H100-SXM5-80GB",
        "H100",
        "Hopper",
        80,
        700,
        70,
        5,
        18,
        25.0,
        _MIG_H100_80,
        True,
        ("2330",),
        (r"H100-80GB-HBM3", r"H100-SXM5?(-80GB)?$"),
    ),
    GpuModel(
        "H100-PCIE-80GB",
        "H100",
        "Hopper",
        80,
        350,
        50,
        5,
        0,
        0.0,
        _MIG_H100_PCIE,
        True,
        ("2331",),
        (r"H100-PCIE",),
    ),
    GpuModel(
        "H100-NVL-94GB",
        "H100",
        "Hopper",
        94,
        400,
        55,
        5,
        0,
        0.0,
        _MIG_H100_94,
        True,
        ("2321",),
        (r"H100-NVL",),
    ),
    # https://www.nvidia.com/en-us/data-center/h200/
    GpuModel(
        "H200-SXM-141GB",
        "H200",
        "Hopper",
        141,
        700,
        75,
        5,
        18,
        25.0,
        _MIG_H200,
        True,
        ("2335",),
        (r"(?<!G)H200(?!-NVL)",),
    ),
    # https://www.nvidia.com/en-us/data-center/dgx-b200/ (1,440 GB over 8 GPUs; 1.8 TB/s NVLink 5)
    GpuModel(
        "B200-SXM-180GB",
        "B200",
        "Blackwell",
        180,
        1000,
        100,
        6,
        18,
        50.0,
        _MIG_B200,
        True,
        ("2901",),
        (r"(?<!G)B200",),
    ),
    # https://www.nvidia.com/en-us/data-center/gb200-nvl72/ (13.4 TB HBM3e over 72 GPUs);
    # 2941 is "GB100 [GB200]" in the PCI ID repository.
    GpuModel(
        "GB200-186GB",
        "GB200",
        "Blackwell",
        186,
        1200,
        100,
        6,
        18,
        50.0,
        (),
        True,
        ("2941",),
        (r"GB200",),
    ),
    # https://www.nvidia.com/en-us/data-center/grace-hopper-superchip/ : 96 GB HBM3 (sold as
    # "GH200 480GB", counting the Grace LPDDR5X) or 144 GB HBM3e; the module is configurable
    # from 450 W to 1000 W (CPU + GPU + memory). 2342 is "GH100 [GH200 120GB / 480GB]".
    GpuModel(
        "GH200-96GB",
        "GH200",
        "Hopper",
        96,
        1000,
        75,
        5,
        18,
        25.0,
        _MIG_H100_94,
        True,
        ("2342",),
        (r"GH200(?!.*144G)",),
    ),
    GpuModel(
        "GH200-144GB",
        "GH200",
        "Hopper",
        144,
        1000,
        75,
        5,
        18,
        25.0,
        (),
        True,
        ("2348",),
        (r"GH200.*144G",),
    ),
    # https://www.nvidia.com/en-us/data-center/dgx-b300/ (2.3 TB HBM3e over 8 GPUs)
    GpuModel(
        "B300-SXM-288GB",
        "B300",
        "Blackwell Ultra",
        288,
        1100,
        110,
        6,
        18,
        50.0,
        (),
        True,
        (),
        (r"(?<!G)B300",),
    ),
    # https://www.nvidia.com/en-us/data-center/l40s/
    GpuModel(
        "L40S-48GB",
        "L40S",
        "Ada Lovelace",
        48,
        350,
        35,
        4,
        pci_device_ids=("26b9",),
        patterns=(r"L40S",),
    ),
    # https://www.nvidia.com/en-us/data-center/l4/
    GpuModel(
        "L4-24GB",
        "L4",
        "Ada Lovelace",
        24,
        72,
        16,
        4,
        pci_device_ids=("27b8",),
        patterns=(r"(?<![A-Z0-9])L4(?![0-9A-Z])",),
    ),
    # https://www.nvidia.com/en-us/data-center/products/a10-gpu/
    GpuModel(
        "A10-24GB",
        "A10",
        "Ampere",
        24,
        150,
        20,
        4,
        pci_device_ids=("2236",),
        patterns=(r"(?<![A-Z0-9])A10(?![0-9])(?!G)",),
    ),
    GpuModel(
        "A30-24GB",
        "A30",
        "Ampere",
        24,
        165,
        30,
        4,
        4,
        50.0,
        _MIG_A30,
        True,
        ("20b7",),
        (r"(?<![A-Z0-9])A30(?![0-9])",),
    ),
    # https://www.nvidia.com/en-us/data-center/tesla-t4/
    GpuModel(
        "T4-16GB",
        "T4",
        "Turing",
        16,
        70,
        10,
        3,
        pci_device_ids=("1eb8",),
        patterns=(r"(?<![A-Z0-9])T4(?![0-9])",),
    ),
    # https://images.nvidia.com/content/tesla/pdf/nvidia-tesla-p100-PCIe-datasheet.pdf
    GpuModel(
        "P100-PCIE-16GB",
        "P100",
        "Pascal",
        16,
        250,
        30,
        3,
        pci_device_ids=("15f8",),
        patterns=(r"P100-PCIE-16GB",),
    ),
    GpuModel(
        "P100-SXM2-16GB",
        "P100",
        "Pascal",
        16,
        300,
        35,
        3,
        4,
        20.0,
        pci_device_ids=("15f9",),
        patterns=(r"P100-SXM2",),
    ),
    # https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf
    GpuModel(
        "V100-SXM2-16GB",
        "V100",
        "Volta",
        16,
        300,
        40,
        3,
        6,
        25.0,
        pci_device_ids=("1db1",),
        patterns=(r"V100-SXM2-16GB",),
    ),
    GpuModel(
        "V100-SXM2-32GB",
        "V100",
        "Volta",
        32,
        300,
        40,
        3,
        6,
        25.0,
        pci_device_ids=("1db5",),
        patterns=(r"V100-SXM2-32GB",),
    ),
    GpuModel(
        "V100-PCIE-16GB",
        "V100",
        "Volta",
        16,
        250,
        35,
        3,
        pci_device_ids=("1db4",),
        patterns=(r"V100-PCIE-16GB",),
    ),
    GpuModel(
        "V100-PCIE-32GB",
        "V100",
        "Volta",
        32,
        250,
        35,
        3,
        pci_device_ids=("1db6",),
        patterns=(r"V100-PCIE-32GB",),
    ),
    # https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/
    GpuModel(
        "RTX4090-24GB",
        "RTX4090",
        "Ada Lovelace",
        24,
        450,
        25,
        4,
        pci_device_ids=("2684",),
        patterns=(r"RTX-4090(?!-D)",),
    ),
    # https://www.nvidia.com/en-us/geforce/graphics-cards/50-series/rtx-5090/
    GpuModel(
        "RTX5090-32GB",
        "RTX5090",
        "Blackwell",
        32,
        575,
        30,
        5,
        pci_device_ids=("2b85",),
        patterns=(r"RTX-5090",),
    ),
)

# AMD Instinct: https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html
# (192 GB HBM3, 750 W, 7 Infinity Fabric links of 128 GB/s bidirectional, i.e. 64 GB/s per
# direction, one to each other GPU of an 8-GPU OAM platform), .../mi300/mi300a.html (APU:
# 128 GB HBM3 shared with its 24 Zen 4 cores, 550 W, up to 760 W), .../mi325x.html (256 GB
# HBM3E, 1000 W), .../mi200/mi250x.html (128 GB HBM2e over 2 dies, 560 W, 8 links at 50 GB/s
# per direction). MI308X: the 192 GB MI300 variant for China, at a 650 W cap (rocm-smi on the
# MI308X fixture). Partition modes from the ROCm GPU partitioning guide:
# https://rocm.docs.amd.com/en/latest/how-to/gpu-partitioning/mi300x/overview.html
# Device ids: 74a1 MI300X, 74b5 MI300X VF, 74a2 MI308X, 74a5 MI325X, 74a0 MI300A, 740c MI250X.
_MI300_PARTITIONS = ("SPX", "DPX", "QPX", "CPX", "NPS1", "NPS4")
AMD_CATALOG: tuple[GpuModel, ...] = (
    GpuModel(
        "MI300X-192GB",
        "MI300X",
        "CDNA3",
        192,
        750,
        140,
        5,
        7,
        64.0,
        mig_capable=False,
        pci_device_ids=("74a1", "74b5"),
        patterns=(r"(?<![0-9A-Z])MI300X(?![0-9])",),
        vendor="AMD",
        pci_vendor="1002",
        interconnect="xGMI",
        partitions=_MI300_PARTITIONS,
    ),
    GpuModel(
        "MI308X-192GB",
        "MI308X",
        "CDNA3",
        192,
        650,
        140,
        5,
        7,
        64.0,
        pci_device_ids=("74a2",),
        patterns=(r"(?<![0-9A-Z])MI308X(?![0-9])",),
        vendor="AMD",
        pci_vendor="1002",
        interconnect="xGMI",
        partitions=_MI300_PARTITIONS,
    ),
    GpuModel(
        "MI325X-256GB",
        "MI325X",
        "CDNA3",
        256,
        1000,
        160,
        5,
        7,
        64.0,
        pci_device_ids=("74a5",),
        patterns=(r"(?<![0-9A-Z])MI325X(?![0-9])",),
        vendor="AMD",
        pci_vendor="1002",
        interconnect="xGMI",
        partitions=_MI300_PARTITIONS,
    ),
    GpuModel(
        "MI300A-128GB",
        "MI300A",
        "CDNA3",
        128,
        550,
        100,
        5,
        pci_device_ids=("74a0",),
        patterns=(r"(?<![0-9A-Z])MI300A(?![0-9])",),
        vendor="AMD",
        pci_vendor="1002",
        interconnect="xGMI",
        partitions=("SPX", "TPX", "CPX", "NPS1"),
    ),
    GpuModel(
        "MI250X-128GB",
        "MI250X",
        "CDNA2",
        128,
        560,
        90,
        4,
        8,
        50.0,
        pci_device_ids=("740c",),
        patterns=(r"(?<![0-9A-Z])MI250X?(?![0-9])",),
        vendor="AMD",
        pci_vendor="1002",
        interconnect="xGMI",
    ),
)
CATALOG = CATALOG + AMD_CATALOG

# NVSwitch chips as lspci / sysfs show them (class 0x0680, vendor 10de).
NVSWITCH_PCI_DEVICE_IDS: dict[str, str] = {
    "1af1": "NVSwitch gen2 (A100)",
    "22a3": "NVSwitch gen3 (H100)",
}

_COMPILED: tuple[tuple[GpuModel, tuple[re.Pattern[str], ...]], ...] = tuple(
    (m, tuple(re.compile(p) for p in m.patterns)) for m in CATALOG
)


def normalise_product_name(name: str) -> str:
    """'NVIDIA GeForce RTX 4090' -> 'RTX-4090'; 'NVIDIA-H100-80GB-HBM3' -> 'H100-80GB-HBM3'."""
    text = re.sub(r"[\s_]+", "-", name.strip().upper())
    text = re.sub(r"-+", "-", text)
    for prefix in ("NVIDIA-", "TESLA-", "GEFORCE-", "QUADRO-", "AMD-", "INSTINCT-"):
        text = text.removeprefix(prefix)
    # GFD appends the MIG profile under the single strategy: A100-SXM4-40GB-MIG-1G.5GB.
    text = re.sub(r"-MIG-[0-9]+G\.[0-9]+GB.*$", "", text)
    return text.strip("-")


def find_model(product_name: str) -> GpuModel | None:
    """The catalog entry for a product name, or None for a GPU Stratum does not know."""
    text = normalise_product_name(product_name)
    for model, patterns in _COMPILED:
        if text == model.model or any(p.search(text) for p in patterns):
            return model
    return None


def find_model_by_pci_id(device_id: str, vendor: str | None = None) -> GpuModel | None:
    """The model of a PCI device id ('74a1', '0x2330'); `vendor` ('1002') narrows the search."""
    device_id = device_id.lower().removeprefix("0x")[-4:]
    for model in CATALOG:
        if vendor is not None and model.pci_vendor != vendor.lower().removeprefix("0x"):
            continue
        if device_id in model.pci_device_ids:
            return model
    return None


def get_model(model: str) -> GpuModel:
    """The catalog entry of a canonical model name; KeyError names the known ones."""
    for entry in CATALOG:
        if entry.model == model:
            return entry
    raise KeyError(f"unknown GPU model {model!r}; known: {', '.join(m.model for m in CATALOG)}")
