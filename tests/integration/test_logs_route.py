"""GET …/workloads/NAME/log says plainly when there is nothing to read: a workload not yet
placed, one on the simulator (which runs no processes), a replica it does not have."""

from __future__ import annotations

import time

import pytest

from stratum.client.http import StratumClient
from stratum.core.errors import Invalid, NotFound
from stratum.testing import manifests
from stratum.testing.harness import LiveServer


def test_logs_of_a_simulated_or_unplaced_workload_say_why_there_are_none(
    database_url: str,
) -> None:
    server = LiveServer(database_url, controllers=True).start()
    try:
        with StratumClient(server.url, server.token) as client:
            client.apply_list(
                [
                    *manifests.profiles(),
                    manifests.site("fra", country="DE"),
                    manifests.tenant("team"),
                    manifests.cluster(
                        "sim",
                        "fra",
                        [{"name": "h100", "profile": "hgx-h100-80gb", "count": 1}],
                    ),
                    manifests.workload("sim-job", "team", {"compute": {"gpus": 1}}),
                    manifests.workload("too-big", "team", {"compute": {"gpus": 64}}),
                ]
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                phase = client.get("Workload", "sim-job", "team").get("status", {}).get("phase")
                if phase == "Running":
                    break
                time.sleep(0.2)
            with pytest.raises(NotFound) as simulated:
                client.logs("sim-job", "team")
            assert "simulated backend, which keeps no output" in simulated.value.message
            with pytest.raises(Invalid) as replica:
                client.logs("sim-job", "team", replica=2)
            assert "has 1 replica(s), numbered 0 to 0; got 2" in replica.value.message
            with pytest.raises(NotFound) as unplaced:
                client.logs("too-big", "team")
            assert "team/too-big has not been placed" in unplaced.value.message
            with pytest.raises(NotFound):
                client.logs("nothing-here", "team")
    finally:
        server.stop()
