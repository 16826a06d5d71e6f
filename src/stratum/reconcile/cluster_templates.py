"""A Cluster built from a ClusterTemplate (`spec.template`): the template, rendered with the
Cluster's parameters, fills in what the Cluster's own spec leaves out (its node pools, its
backend settings). What the Cluster states itself always wins, so a launched Cluster (which
carries both the rendered pools and the reference) and a hand-written one that names only
a template are read the same way."""

from __future__ import annotations

from pydantic import ValidationError

from stratum.api.v1alpha1 import Cluster
from stratum.api.v1alpha1.clusters import ClusterSpec
from stratum.core.errors import Invalid
from stratum.core.templates import TemplateRef, family_of, pick_version, render
from stratum.core.validation import causes_from, summarise
from stratum.store.objects import ObjectStore


class TemplateProblem(Exception):
    """Why a Cluster's template cannot be used: a status reason and a message that names
    the field and what was expected."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # TemplateNotFound | TemplateInvalid
        self.message = message


def effective_spec(store: ObjectStore, cluster: Cluster) -> ClusterSpec:
    """The Cluster's spec with the gaps its template fills; the spec itself without one."""
    ref = cluster.spec.template
    if ref is None:
        return cluster.spec
    with store.read() as tx:
        templates = tx.list("ClusterTemplate").items
    try:
        chosen = pick_version(templates, TemplateRef(ref.name, ref.version))
    except Invalid as err:
        raise TemplateProblem("TemplateNotFound", f"spec.template: {err.message}") from None
    label = f"ClusterTemplate {chosen['metadata']['name']} ({family_of(chosen)}@"
    label += f"{chosen['spec']['version']})"
    try:
        body = render(chosen["spec"], ref.parameters)
    except Invalid as err:
        raise TemplateProblem(
            "TemplateInvalid", f"spec.template.parameters for {label}: {err.message}"
        ) from None
    try:
        rendered = ClusterSpec.model_validate({"site": cluster.spec.site, **body})
    except ValidationError as err:
        raise TemplateProblem(
            "TemplateInvalid",
            f"{label} does not render to a valid Cluster spec: "
            + summarise(causes_from(err, "body")),
        ) from None
    if not rendered.node_pools and not cluster.spec.node_pools:
        raise TemplateProblem(
            "TemplateInvalid",
            f"{label} renders no nodePools and the Cluster states none: expected at least one",
        )
    return cluster.spec.model_copy(
        update={
            "node_pools": cluster.spec.node_pools or rendered.node_pools,
            "backend_config": {**rendered.backend_config, **cluster.spec.backend_config},
        }
    )
