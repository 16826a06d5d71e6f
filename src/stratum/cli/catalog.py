"""`stratum catalog list|show` and `stratum launch TEMPLATE[@VERSION]`: the catalog as a
person uses it. Rendering and parameter checks live in core/templates.py.

Versions form a chain (the `catalog.stratum.dev/family` label): `launch llm-finetune`
takes the newest published version, and launching another version onto an existing
workload's name is an upgrade that keeps the parameters it was launched with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from stratum.cli.output import (
    EXIT_USAGE,
    console,
    fail,
    fail_api,
    print_json,
    print_table,
    print_yaml,
    read_one_document,
)
from stratum.core.errors import ApiError

app = typer.Typer(
    help="Browse the catalog of workload and cluster templates.", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="catalog")
    root.command("launch")(launch)


def _templates(client: Any, namespace: str | None) -> list[dict[str, Any]]:
    """Every template version the caller can see: the shared catalog, the tenant's own
    namespace, and the cluster templates."""
    from stratum.api.v1alpha1 import CATALOG_NAMESPACE

    found: list[dict[str, Any]] = []
    for ns in dict.fromkeys(n for n in (CATALOG_NAMESPACE, namespace) if n):
        found += client.list("WorkloadTemplate", namespace=ns)
    try:
        found += client.list("ClusterTemplate")
    except ApiError as err:
        if err.code != 403:
            raise
    return found


def _families(templates: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    from stratum.core.templates import family_of, semver_key

    families: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in templates:
        families.setdefault((t["kind"], family_of(t)), []).append(t)
    for versions in families.values():
        versions.sort(key=lambda t: semver_key(str(t["spec"]["version"])))
    return families


@app.command("list")
def catalog_list(
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Also the tenant's own templates.")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """The catalog: one line per template, its newest version and all its versions."""
    from stratum.cli.resources import _client, default_namespace
    from stratum.core.templates import parse_ref, pick_version

    with _client() as client:
        try:
            templates = _templates(client, default_namespace(namespace))
        except ApiError as err:
            fail_api(err)
    rows = []
    for (kind, family), versions in sorted(_families(templates).items()):
        latest = pick_version(versions, parse_ref(family))
        rows.append(
            {
                "name": family,
                "kind": kind,
                "latest": latest["spec"]["version"],
                "versions": [v["spec"]["version"] for v in versions],
                "description": " ".join(str(latest["spec"].get("description", "")).split()),
            }
        )
    if output == "json":
        print_json(rows)
        return
    if not rows:
        console(stderr=True).print("The catalog is empty.", markup=False)
        return
    print_table(
        ["NAME", "KIND", "LATEST", "VERSIONS", "DESCRIPTION"],
        [
            [r["name"], r["kind"], r["latest"], ",".join(r["versions"]), r["description"]]
            for r in rows
        ],
    )


@app.command("show")
def catalog_show(
    template: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text, yaml or json.")] = "text",
) -> None:
    """One template: its versions, parameters (type, default, rules) and body."""
    from stratum.cli.resources import _client, default_namespace
    from stratum.core.templates import family_of, parse_ref, pick_version

    with _client() as client:
        try:
            ref = parse_ref(template)
            templates = _templates(client, default_namespace(namespace))
            chosen = pick_version(templates, ref)
        except ApiError as err:
            fail_api(err)
    if output in ("yaml", "json"):
        (print_yaml if output == "yaml" else print_json)(chosen)
        return
    spec = chosen["spec"]
    family = family_of(chosen)
    versions = [
        t["spec"]["version"] for t in _families(templates).get((chosen["kind"], family), [])
    ]
    out = console()
    out.print(f"[bold]{family}@{spec['version']}[/bold] ({chosen['kind']})")
    out.print(" ".join(str(spec.get("description", "")).split()), markup=False)
    out.print(f"Versions: {', '.join(versions)}", markup=False)
    schema = spec.get("parameters") or {}
    required = set(schema.get("required", []))
    props = schema.get("properties") or {}
    out.print("[bold]Parameters[/bold]" + ("" if props else ": none"))
    if props:
        print_table(
            ["NAME", "TYPE", "REQUIRED", "DEFAULT", "RULES", "DESCRIPTION"],
            [
                [
                    name,
                    str(p.get("type", "string")),
                    "yes" if name in required else "no",
                    json.dumps(p["default"]) if "default" in p else "-",
                    _rules(p),
                    str(p.get("description", "")),
                ]
                for name, p in props.items()
            ],
        )
    out.print("[bold]Body[/bold]")
    print_yaml(spec.get("body"))


def _rules(prop: dict[str, Any]) -> str:
    rules = [
        f"{k} {prop[k]}"
        for k in ("minimum", "maximum", "minLength", "maxLength", "pattern")
        if k in prop
    ]
    if "enum" in prop:
        rules.append("one of " + "|".join(str(v) for v in prop["enum"]))
    return ", ".join(rules) or "-"


def _values(sets: list[str], files: list[Path]) -> dict[str, Any]:
    """-f values files first, then --set k=v (values read as YAML scalars: 8 is a number)."""
    values: dict[str, Any] = {}
    for path in files:
        data = read_one_document(path, "a mapping of parameter values")
        if not isinstance(data, dict):
            fail(f"{path}: expected a mapping of parameter name to value", code=EXIT_USAGE)
        values.update(data)
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--set {item!r}: expected NAME=VALUE", code=EXIT_USAGE)
        try:
            values[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            values[key] = raw
    return values


def launch(
    template: Annotated[str, typer.Argument(help="NAME or NAME@VERSION from `catalog list`.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Name of what to make (default: NAME).")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Tenant for a workload (default: STRATUM_NAMESPACE)."
        ),
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="A parameter, NAME=VALUE; repeatable.")
    ] = None,
    values_files: Annotated[
        list[Path] | None, typer.Option("--values", "-f", help="YAML file of parameter values.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would be made and where it would be placed now."),
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the workload is Running.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="With --wait: seconds.")] = 300.0,
) -> None:
    """Launch a template: render it with your parameters, then apply what it makes.

    Launching another version onto an existing name upgrades it, keeping the parameters
    it was launched with (override any with --set).
    """
    from stratum.cli.resources import _client, default_namespace
    from stratum.core.templates import (
        PARAMETERS_ANNOTATION,
        TEMPLATE_ANNOTATION,
        family_of,
        parse_ref,
        pick_version,
        render,
    )

    given = _values(sets or [], values_files or [])
    ns = default_namespace(namespace)
    with _client() as client:
        try:
            ref = parse_ref(template)
            chosen = pick_version(_templates(client, ns), ref)
            family, version = family_of(chosen), chosen["spec"]["version"]
            is_workload = chosen["kind"] == "WorkloadTemplate"
            target_kind = "Workload" if is_workload else "Cluster"
            target = name or family
            if is_workload and not ns:
                fail("a workload goes into a tenant: pass -n TENANT", code=EXIT_USAGE)
            existing = _find(client, target_kind, target, ns if is_workload else None)
            launched_from = (existing or {}).get("metadata", {}).get("annotations", {})
            values = dict(given)
            if launched_from.get(TEMPLATE_ANNOTATION, "").startswith(f"{family}@"):
                values = {**json.loads(launched_from.get(PARAMETERS_ANNOTATION) or "{}"), **given}
            body = render(chosen["spec"], values)
        except ApiError as err:
            fail_api(err)
        meta: dict[str, Any] = {
            "name": target,
            "labels": {"catalog.stratum.dev/family": family},
            "annotations": {
                TEMPLATE_ANNOTATION: f"{family}@{version}",
                PARAMETERS_ANNOTATION: json.dumps(values, sort_keys=True),
            },
        }
        if is_workload:
            meta["namespace"] = ns
            spec = {**body, "template": chosen["metadata"]["name"]}
        else:
            spec = {
                **body,
                "template": {"name": family, "version": version, "parameters": values},
            }
        obj = {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": target_kind,
            "metadata": meta,
            "spec": spec,
        }
        try:
            result = client.apply(obj, dry_run=dry_run)
        except ApiError as err:
            fail_api(err, hint="nothing was launched")
        if dry_run:
            result.pop("status", None)
            print_yaml(result)
            if is_workload:
                _preview(client, result)
            return
        was = launched_from.get(TEMPLATE_ANNOTATION)
        where = f"{target_kind.lower()}/{target}" + (f" -n {ns}" if is_workload else "")
        if existing is None:
            verb = f"launched from {family}@{version}"
        elif was and was != f"{family}@{version}":
            verb = f"upgraded from {was} to {family}@{version}"
        else:
            verb = f"updated from {family}@{version}"
        console().print(f"{where} {verb}", markup=False)
        if wait and is_workload:
            from stratum.cli.wait import wait_all

            wait_all(client, [("Workload", target, ns)], "phase=Running", timeout)


def _find(client: Any, kind: str, name: str, ns: str | None) -> dict[str, Any] | None:
    from stratum.core.errors import NotFound

    try:
        found: dict[str, Any] = client.get(kind, name, ns)
        return found
    except NotFound:
        return None


def _preview(client: Any, workload: dict[str, Any]) -> None:
    """Where the workload would be placed now: the server plans it on a copy of the fleet
    (any role that may create it may ask; only its own nodes are named)."""
    try:
        preview = client.placement_preview(workload)
    except ApiError as err:
        fail_api(err)
    out = console()
    if preview.get("binds"):
        out.print(f"# would be placed now on: {', '.join(preview['nodes'])}", markup=False)
    else:
        out.print(f"# would not be placed now: {preview.get('message', '')}", markup=False)
