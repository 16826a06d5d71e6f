"""The portal's topology picture and CSV cells, from wire dicts (no server)."""

from __future__ import annotations

import re
from typing import Any

from stratum.core.reports import csv_cell as _cell
from stratum.portal import drawing

HARDWARE = {
    "sockets": [{"id": 0, "numaNodes": [{"id": 0, "cpus": "0-31"}]}],
    "gpus": [
        {
            "index": i,
            "model": "A100-SXM4-80GB",
            "numaNode": 0,
            "pcieSwitch": f"sw{i // 2}",
            "nvlinkDomain": "nvl0",
        }
        for i in range(4)
    ],
    "nics": [
        {"name": "mlx5_0", "numaNode": 0, "pcieSwitch": "sw0", "rdma": True, "speedGbps": 200}
    ],
}


def _svg(
    allocations: list[dict[str, object]],
    mig: dict[tuple[str, str], str],
    *,
    may_name: bool = True,
    focus: tuple[str, str] | None = None,
) -> str:
    shares = drawing.shares_by_gpu(allocations, mig, focus=focus, may_name=may_name)
    states: list[dict[str, Any]] = [
        {"index": 3, "health": "Failed"},
        {"index": 0, "utilizationPct": 50.0},
    ]
    return str(
        drawing.node_svg(HARDWARE, drawing.gpu_views(HARDWARE, states, shares), title="n<1>")
    )


def test_mig_slices_and_fractions_are_drawn_inside_their_gpu() -> None:
    svg = _svg(
        [
            {"namespace": "research", "workload": "embed", "gpus": [0]},
            {"namespace": "health-eu", "workload": "triage", "gpus": [1], "gpuMilli": 500},
        ],
        {("research", "embed"): "1g.10gb on GPU 0 slots 6-6"},
    )
    gpu0 = re.search(r'<g class="gpu[^"]*" data-gpu="0".*?</g>', svg)
    assert gpu0 is not None
    assert gpu0.group(0).count('class="mig-slot"') == 7  # the seven-slot grid
    assert f'fill="{drawing.tenant_colour("research")}"' in gpu0.group(0)
    gpu1 = re.search(r'<g class="gpu[^"]*" data-gpu="1".*?</g>', svg)
    assert gpu1 is not None and 'width="31.0"' in gpu1.group(0)  # half of the 62-px share area
    assert 'data-gpu="3" data-health="Failed"' in svg and "FAILED" in svg
    assert "NVLink domain nvl0 (4 GPUs)" in svg
    assert svg.count("PCIe switch sw") == 2 and "mlx5_0 200G" in svg
    assert "n&lt;1&gt;" in svg and "n<1>" not in svg  # every text is escaped


def test_other_tenants_are_not_named_to_a_tenant() -> None:
    svg = _svg(
        [
            {"namespace": "research", "workload": "mine", "gpus": [0]},
            {"namespace": "health-eu", "workload": "secret-project", "gpus": [1]},
        ],
        {},
        may_name=False,
        focus=("research", "mine"),
    )
    assert "secret-project" not in svg and "health-eu" not in svg
    assert "research/mine" in svg and "other/other work" in svg


def test_csv_cells_never_start_a_formula() -> None:
    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _cell(["EU", "GDPR"]) == "EU GDPR"
    assert _cell(None) == ""
