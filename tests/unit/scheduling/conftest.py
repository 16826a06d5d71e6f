"""Small fleets and traces for the scheduling tests."""

from __future__ import annotations

import pytest

from stratum.scheduling.snapshot import NodeSpec, Snapshot


@pytest.fixture
def small_fleet() -> Snapshot:
    return Snapshot.build(
        [
            NodeSpec("a", 32_000, 65_536, 2, "T4"),
            NodeSpec("b", 96_000, 393_216, 8, "G2"),
            NodeSpec("c", 8_000, 32_768, 1, "V100M16"),
            NodeSpec("d", 16_000, 61_440, 0, ""),
        ]
    )
