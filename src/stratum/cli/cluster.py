"""`stratum cluster`: what a cluster backend does with Stratum's objects."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from stratum.cli.output import EXIT_USAGE, fail, fail_api
from stratum.core.errors import ApiError, NotFound

app = typer.Typer(help="What cluster backends make of workloads.", no_args_is_help=True)


@app.command("render")
def render(
    workload: Annotated[str, typer.Argument(help="The Workload's name.")],
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
) -> None:
    """Print the Kubernetes manifests a placed Workload runs with on the kubernetes backend:
    its tenant's Namespace, quota, network policies and PriorityClass, the anchor ConfigMap,
    and per replica a ResourceClaim naming the bound GPUs and a Pod pinned to the bound node
    (owner references are set at apply time, once the anchor has a uid)."""
    import yaml

    from stratum.api.v1alpha1 import Node, Placement, Tenant, Workload
    from stratum.backends.kubernetes.render import render_workload
    from stratum.cli.resources import _client, default_namespace

    if output not in ("yaml", "json"):
        fail(f"--output: {output!r} is not yaml or json", code=EXIT_USAGE)
    ns = default_namespace(namespace)
    if not ns:
        fail("--namespace: a Workload lives in its tenant's namespace; name one", code=EXIT_USAGE)
    with _client() as client:
        try:
            wl = Workload.model_validate(client.get("Workload", workload, ns))
            try:
                placement = Placement.model_validate(client.get("Placement", workload, ns))
            except NotFound:
                fail(
                    f"Workload {ns}/{workload} is not placed (phase "
                    f"{wl.status.phase or 'Pending'}): nothing to render yet"
                )
            nodes = {}
            for name in sorted({r.node for r in placement.spec.replicas}):
                nodes[name] = Node.model_validate(client.get("Node", name))
            try:
                tenant = Tenant.model_validate(client.get("Tenant", ns))
                quota = tenant.spec.quota.gpus
            except NotFound:
                quota = None
        except ApiError as err:
            fail_api(err)
    docs = render_workload(wl, placement, nodes, quota)
    if output == "json":
        sys.stdout.write(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2))
        sys.stdout.write("\n")
        return
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
