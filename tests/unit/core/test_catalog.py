"""Every template of the sample catalog renders, with only its required parameters, to a
spec the API accepts; parameters have defaults or are required."""

from __future__ import annotations

import pytest

from stratum.api.v1alpha1.clusters import ClusterSpec
from stratum.api.v1alpha1.workloads import WorkloadSpec
from stratum.catalog import catalog_manifests
from stratum.core.templates import FAMILY_LABEL, render

SAMPLE = {"string": "x", "integer": 1, "number": 1.0, "boolean": True}


@pytest.mark.parametrize("template", catalog_manifests(), ids=lambda t: str(t["metadata"]["name"]))
def test_each_template_renders_to_a_valid_spec(template: dict[str, object]) -> None:
    spec = template["spec"]
    assert isinstance(spec, dict)
    schema = spec["parameters"]
    values = {
        name: schema["properties"][name].get("enum", [SAMPLE[schema["properties"][name]["type"]]])[
            0
        ]
        for name in schema.get("required", [])
    }
    if "site" in values:
        values["site"] = "fra-1"
    body = render(spec, values)
    model = WorkloadSpec if template["kind"] == "WorkloadTemplate" else ClusterSpec
    model.model_validate(body)
    assert template["metadata"]["labels"][FAMILY_LABEL]  # type: ignore[index]
    for name, prop in schema["properties"].items():
        assert "default" in prop or name in schema.get("required", []), name
