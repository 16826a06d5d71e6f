"""`apply`, `get`, `describe`, `delete` and `config`: the declarative verbs, over the API."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stratum.cli.columns import columns_for, since
from stratum.cli.output import (
    EXIT_USAGE,
    console,
    fail,
    fail_api,
    print_json,
    print_table,
    print_yaml,
)
from stratum.core.errors import ApiError, Invalid
from stratum.core.manifests import Document, load_documents

OUTPUTS = ("table", "wide", "yaml", "json", "name")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Tenant namespace (default: STRATUM_NAMESPACE or the config)."
    ),
]


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
    app.command("get")(get)
    app.command("describe")(describe)
    app.command("delete")(delete)
    config_app = typer.Typer(help="Read and change the CLI's config file.", no_args_is_help=True)
    config_app.command("view")(config_view)
    config_app.command("set")(config_set)
    config_app.command("unset")(config_unset)
    app.add_typer(config_app, name="config")


def _client() -> Any:
    from stratum.client.config import load_config
    from stratum.client.http import StratumClient

    try:
        config = load_config()
    except ApiError as err:
        fail_api(err)
    # Warnings the server sends (a policy's warn action, a budget near its limit) go to
    # stderr as they come, so that scripts reading stdout are not disturbed.
    return StratumClient(
        config.server,
        config.token,
        on_warning=lambda w: console(stderr=True).print(f"Warning: {w}", markup=False),
    )


def _default_namespace(namespace: str | None) -> str | None:
    if namespace:
        return namespace
    from stratum.client.config import load_config

    return load_config().namespace


def _kind(word: str) -> Any:
    from stratum.api.v1alpha1 import KINDS, resolve_kind

    model = resolve_kind(word)
    if model is None:
        fail(
            f"unknown kind {word!r}; expected one of {', '.join(k.PLURAL for k in KINDS)}",
            code=EXIT_USAGE,
        )
    return model


# -- apply -------------------------------------------------------------------------------
def _manifest_files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
        if not files:
            fail(f"{path}: no .yaml, .yml or .json files in this directory", code=EXIT_USAGE)
        return files
    if not p.exists():
        fail(f"{path}: no such file or directory", code=EXIT_USAGE)
    return [p]


def _read_documents(paths: list[str], recursive: bool) -> list[Document]:
    documents: list[Document] = []
    for path in paths:
        if path == "-":
            documents += load_documents(sys.stdin.read(), "<stdin>")
            continue
        for file in _manifest_files(path, recursive):
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                fail(f"{file}: not UTF-8 text", code=EXIT_USAGE)
            documents += load_documents(text, str(file))
    return documents


_ITEM = re.compile(r"items\[(\d+)\]")


def _name_documents(err: ApiError, documents: list[Document]) -> ApiError:
    """Rewrite the server's items[i] into the file and document the user wrote."""
    from stratum.core.validation import identify

    match = _ITEM.search(err.message)
    if match is None or int(match.group(1)) >= len(documents):
        clone = type(err)(err.message + "\nnothing was applied")
    else:
        i = int(match.group(1))
        prefix = f"items[{i}]"
        header = f"{documents[i].where}, {identify(documents[i].data)}"
        fields = [
            (c.field.removeprefix(prefix).lstrip("."), c.message)
            for c in err.causes
            if c.field.startswith(prefix)
        ]
        if fields and fields != [("", err.message)]:
            lines = [f"  {f}: {m}" if f else f"  {m}" for f, m in fields]
            text = f"{header}:\n" + "\n".join(lines)
        else:
            text = f"{header}: {err.message.split(': ', 1)[-1]}"
        clone = type(err)(text + "\nnothing was applied")
    clone.code = err.code
    return clone


def apply(
    filename: Annotated[
        list[str],
        typer.Option(
            "--filename",
            "-f",
            help="File, directory or - (stdin) of YAML/JSON manifests; repeatable.",
        ),
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="Read directories recursively.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything, write nothing.")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Create or update every object in the files, all or nothing, in one transaction."""
    try:
        documents = _read_documents(filename, recursive)
    except ApiError as err:
        fail_api(err, hint="nothing was applied")
    if not documents:
        fail("no objects found in the input", code=EXIT_USAGE)
    with _client() as client:
        try:
            results = client.apply_list([d.data for d in documents], dry_run=dry_run)
        except ApiError as err:
            fail_api(_name_documents(err, documents))
    if output == "json":
        print_json(results)
        return
    suffix = " (dry run)" if dry_run else ""
    out = console()
    for r in results:
        ns = f" -n {r['namespace']}" if r.get("namespace") else ""
        out.print(f"{r['kind'].lower()}/{r['name']}{ns} {r['action']}{suffix}", markup=False)


# -- get ---------------------------------------------------------------------------------
def get(
    kind: Annotated[str, typer.Argument(help="Kind, plural or short name, e.g. workloads.")],
    names: Annotated[list[str] | None, typer.Argument(help="Names; none lists all.")] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    selector: Annotated[
        str | None,
        typer.Option(
            "--selector", "-l", help="Label selector, e.g. 'tier=gpu,site in (fra-1,ams-1)'."
        ),
    ] = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table, wide, yaml, json or name.")
    ] = "table",
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After listing, print changes as they happen.")
    ] = False,
) -> None:
    """Show objects as a table, YAML or JSON."""
    if output not in OUTPUTS:
        fail(f"--output: expected one of {', '.join(OUTPUTS)}, got {output!r}", code=EXIT_USAGE)
    model = _kind(kind)
    ns = None if all_namespaces else _default_namespace(namespace)
    with _client() as client:
        try:
            if names:
                if model.NAMESPACED and not ns:
                    fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
                items = [client.get(model, n, ns) for n in names]
            else:
                items = client.list(model, namespace=ns, label_selector=selector)
            _print_objects(model, items, output, single=names is not None and len(names) == 1)
            if watch:
                _watch(client, model, ns, selector, items)
        except ApiError as err:
            fail_api(err)


def _print_objects(model: Any, items: list[dict[str, Any]], output: str, single: bool) -> None:
    if output == "yaml":
        if single:
            print_yaml(items[0])
        else:
            print_yaml({"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": items})
    elif output == "json":
        print_json(
            items[0]
            if single
            else {"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": items}
        )
    elif output == "name":
        for item in items:
            console().print(f"{model.KIND.lower()}/{item['metadata']['name']}", markup=False)
    elif not items:
        console(stderr=True).print(f"No {model.PLURAL} found.", markup=False)
    else:
        if model.KIND == "Event":  # oldest first, newest last, as they happened
            items = sorted(
                items,
                key=lambda e: (e.get("spec", {}).get("lastTimestamp") or "", e["metadata"]["name"]),
            )
        cols = columns_for(model.KIND, namespaced=model.NAMESPACED, wide=output == "wide")
        print_table([h for h, _ in cols], [[g(item) for _, g in cols] for item in items])


def _watch(
    client: Any, model: Any, ns: str | None, selector: str | None, items: list[dict[str, Any]]
) -> None:
    rv = max((int(i["metadata"]["resourceVersion"]) for i in items), default=0)
    out = console()
    try:
        for event in client.watch(
            model, namespace=ns, label_selector=selector, resource_version=str(rv) if rv else None
        ):
            if event["type"] == "BOOKMARK":
                continue
            obj = event["object"]
            name = obj.get("metadata", {}).get("name", "")
            out.print(f"{event['type']:<9} {model.KIND.lower()}/{name}", markup=False)
    except KeyboardInterrupt:
        return


# -- describe ----------------------------------------------------------------------------
def describe(
    kind: Annotated[str, typer.Argument(help="Kind, plural or short name.")],
    name: Annotated[str, typer.Argument(help="Object name.")],
    namespace: NamespaceOpt = None,
) -> None:
    """Show one object in full: metadata, spec, status conditions and its events."""
    model = _kind(kind)
    ns = _default_namespace(namespace)
    if model.NAMESPACED and not ns:
        fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
    with _client() as client:
        try:
            obj = client.get(model, name, ns)
            events = sorted(
                (
                    e
                    for e in client.list("Event", namespace=ns if model.NAMESPACED else None)
                    if e["spec"]["involvedObject"].get("kind") == model.KIND
                    and e["spec"]["involvedObject"].get("name") == name
                ),
                key=lambda e: e["spec"].get("lastTimestamp") or "",
            )
        except ApiError as err:
            fail_api(err)
    out = console()
    meta = obj["metadata"]
    out.print(
        f"[bold]{model.KIND}[/bold] {meta.get('namespace', '') and meta['namespace'] + '/'}"
        f"{meta['name']}"
    )
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp"):
        out.print(f"  {key}: {meta.get(key)}", markup=False)
    for key in ("labels", "annotations"):
        if meta.get(key):
            out.print(
                f"  {key}: " + ", ".join(f"{k}={v}" for k, v in meta[key].items()), markup=False
            )
    out.print("[bold]Spec[/bold]")
    print_yaml_indented(obj.get("spec"))
    status = dict(obj.get("status") or {})
    conditions = status.pop("conditions", [])
    if status:
        out.print("[bold]Status[/bold]")
        print_yaml_indented(status)
    _print_clauses(obj)
    out.print("[bold]Conditions[/bold]" + ("" if conditions else ": none"))
    if conditions:
        print_table(
            ["TYPE", "STATUS", "REASON", "MESSAGE"],
            [
                [c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")]
                for c in conditions
            ],
        )
    out.print("[bold]Events[/bold]" + ("" if events else ": none"))
    if events:
        print_table(
            ["LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE"],
            [
                [
                    since("spec", "lastTimestamp")(e),
                    e["spec"].get("type", ""),
                    e["spec"].get("reason", ""),
                    _times(e["spec"]),
                    e["spec"].get("message", ""),
                ]
                for e in events
            ],
        )


def _print_clauses(obj: dict[str, Any]) -> None:
    """A Placement's evidence, or a refused Workload's reasons: one line per clause."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if obj.get("kind") == "Placement" and spec.get("evidence"):
        console().print("[bold]Evidence[/bold]")
        print_table(
            ["CLAUSE", "HOLDS", "EVIDENCE"],
            [
                [e.get("clause", ""), "yes" if e.get("holds", True) else "NO", e.get("message", "")]
                for e in spec["evidence"]
            ],
        )
    elif obj.get("kind") == "Workload" and status.get("reasons"):
        console().print(f"[bold]Why {status.get('phase', 'not placed')}[/bold]")
        print_table(
            ["CLAUSE", "EXCLUDED", "REASON"],
            [
                [r.get("clause", ""), str(r.get("excluded", 0)), r.get("message", "")]
                for r in status["reasons"]
            ],
        )


def _times(spec: dict[str, Any]) -> str:
    """1, or "3 (first 5m ago)" for an event that happened again."""
    count = int(spec.get("count", 1))
    return str(count) if count == 1 else f"{count} (first {since('firstTimestamp')(spec)} ago)"


def print_yaml_indented(data: Any) -> None:
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True) if data else "{}\n"
    sys.stdout.write("".join(f"  {line}\n" for line in text.splitlines()))
    sys.stdout.flush()


# -- delete ------------------------------------------------------------------------------
def delete(
    kind: Annotated[str | None, typer.Argument(help="Kind, plural or short name.")] = None,
    names: Annotated[list[str] | None, typer.Argument(help="Names to delete.")] = None,
    namespace: NamespaceOpt = None,
    filename: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="Delete the objects named in these manifests."),
    ] = None,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found")] = False,
) -> None:
    """Delete objects by kind and name, or every object named in manifests."""
    targets: list[tuple[Any, str, str | None]] = []
    if filename:
        try:
            documents = _read_documents(filename, recursive=False)
        except ApiError as err:
            fail_api(err)
        for d in documents:
            if not isinstance(d.data, dict) or not isinstance(d.data.get("metadata"), dict):
                fail(f"{d.where}: expected an object with kind and metadata.name", code=EXIT_USAGE)
            model = _kind(str(d.data.get("kind")))
            targets.append(
                (model, str(d.data["metadata"].get("name")), d.data["metadata"].get("namespace"))
            )
        targets.reverse()  # dependents (workloads) before what they depend on (tenants)
    elif kind and names:
        model = _kind(kind)
        ns = _default_namespace(namespace)
        if model.NAMESPACED and not ns:
            fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
        targets = [(model, n, ns) for n in names]
    else:
        fail("name what to delete: KIND NAME... or -f FILE", code=EXIT_USAGE)
    failed = False
    out = console()
    with _client() as client:
        for model, name, ns in targets:
            try:
                client.delete(model, name, ns)
                out.print(f"{model.KIND.lower()}/{name} deleted", markup=False)
            except ApiError as err:
                if ignore_not_found and err.code == 404:
                    continue
                if err.code in (503,):
                    fail_api(err)
                console(stderr=True).print(f"error: {err.message}", markup=False)
                failed = True
    if failed:
        raise typer.Exit(1)


# -- config ------------------------------------------------------------------------------
def config_view() -> None:
    """Show the settings in effect and where they come from."""
    from stratum.client.config import config_path, load_config

    try:
        config = load_config()
    except Invalid as err:
        fail_api(err)
    print_yaml(
        {
            "configFile": str(config_path()),
            "server": config.server,
            "token": "(set)" if config.token else None,
            "namespace": config.namespace,
        }
    )


def config_set(
    key: Annotated[str, typer.Argument(help="server, token or namespace")],
    value: Annotated[str, typer.Argument()],
) -> None:
    """Set a value in the config file (written with mode 0600)."""
    from stratum.client.config import write_config_value

    try:
        path = write_config_value(key, value)
    except Invalid as err:
        fail_api(err)
    console().print(f"{key} set in {path}", markup=False)


def config_unset(key: Annotated[str, typer.Argument(help="server, token or namespace")]) -> None:
    """Remove a value from the config file."""
    from stratum.client.config import write_config_value

    try:
        path = write_config_value(key, None)
    except Invalid as err:
        fail_api(err)
    console().print(f"{key} unset in {path}", markup=False)
