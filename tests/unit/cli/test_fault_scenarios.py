"""A fault scenario file speaks the same keys as `stratum fault inject`'s flags, and an
unknown key is refused with the allowed ones and the nearest."""

from __future__ import annotations

import pytest
import typer

from stratum.backends.simulated.faults import parse_scenario
from stratum.cli.faults import scenario_keys


def test_flag_names_work_in_the_file() -> None:
    doc = {"faults": [{"at": 5, "kind": "link-degrade", "node": "n1", "gpu": 0, "bandwidth": 0.5}]}
    [fault] = parse_scenario(scenario_keys(doc, "s.yaml"), "s.yaml")
    assert fault.fault["bandwidthFraction"] == 0.5 and fault.at_seconds == 5


def test_unknown_key_lists_the_allowed_ones(capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"faults": [{"kind": "node-down", "nod": "n1"}]}
    with pytest.raises(typer.Exit) as caught:
        scenario_keys(doc, "s.yaml")
    assert caught.value.exit_code == 2
    err = capsys.readouterr().err
    assert "unknown key 'nod'" in err and 'did you mean "node"?' in err
    assert "allowed: at, kind, node, gpu, site, kw, cluster, bandwidth" in err
