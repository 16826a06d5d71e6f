"""Where a workload would be placed now, without writing anything: admission as a dry-run
apply with the caller's rights, then the controllers' own scheduling cycle on a copy of the
fleet (scheduling/planning.py, as `stratum plan`). The caller learns only what a bind would
tell them (node names for its own replicas, or the per-clause reason), never the fleet."""

from __future__ import annotations

from typing import Any

from stratum.api.v1alpha1 import API_VERSION, Workload
from stratum.server.security import RequestContext, system_context
from stratum.server.services.objects import ObjectService


def preview_placement(
    service: ObjectService, obj: Workload, *, ctx: RequestContext
) -> dict[str, Any]:
    """Admit `obj` as a dry run (quota, budget, sovereignty, policies: 4xx as a create
    would be), then plan it on the fleet as it is now."""
    from stratum.scheduling import planning

    admitted = service.apply(obj, dry_run=True, ctx=ctx).object
    fleet = system_context("placement preview")
    workload = Workload.model_validate({k: v for k, v in admitted.items() if k != "status"})
    key = f"{workload.metadata.namespace}/{workload.metadata.name}"

    def other(item: dict[str, Any]) -> bool:
        # A workload of that name already placed is planned afresh, as a launch over it
        # would be: its own Workload and Placement are left out of the fleet.
        meta = item["metadata"]
        return f"{meta.get('namespace')}/{meta['name']}" != key

    objects: dict[str, list[dict[str, Any]]] = {}
    for model in planning.FLEET_KINDS:
        items = service.list(model.KIND, ctx=fleet).items
        objects[model.KIND] = [i for i in items if other(i)] if model.NAMESPACED else items
    result = planning.plan_objects(planning.FleetChange(workloads=[workload]), objects)
    outcome = next((o for o in result.outcomes if o.workload == key), None)
    binds = bool(outcome and outcome.nodes_after)
    return {
        "apiVersion": API_VERSION,
        "kind": "PlacementPreview",
        "workload": admitted,
        "binds": binds,
        "nodes": list(outcome.nodes_after) if outcome else [],
        "message": outcome.after if outcome else "not planned",
    }
