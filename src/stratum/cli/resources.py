"""`apply`, `get`, `describe`, `delete` and `config`: the declarative verbs, over the API."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from stratum.cli.columns import columns_for, since, with_where
from stratum.cli.kinds import complete_kind, resolve
from stratum.cli.output import (
    EXIT_USAGE,
    OUTPUT_HELP,
    check_output,
    console,
    fail,
    fail_api,
    print_json,
    print_objects,
    print_table,
    print_yaml,
)
from stratum.core.errors import ApiError, Invalid
from stratum.core.manifests import Document, load_documents

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# What `get all` shows: the kinds a tenant runs and what the platform made of them.
ALL_KINDS = ("Workload", "Placement", "WorkloadTemplate")

NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Tenant namespace (default: STRATUM_NAMESPACE or the config)."
    ),
]
SelectorOpt = Annotated[
    str | None,
    typer.Option("--selector", "-l", help="Label selector, e.g. 'tier=gpu,site in (fra-1,ams-1)'."),
]
NoHeadersOpt = Annotated[
    bool, typer.Option("--no-headers", help="Tables without their header line.")
]


def register(app: typer.Typer) -> None:
    from stratum.cli import editing, wait

    app.command("apply")(apply)
    app.command("get")(get)
    app.command("describe")(describe)
    app.command("delete")(delete)
    app.command("diff")(editing.diff)
    app.command("edit")(editing.edit)
    app.command("wait")(wait.wait)
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


def default_namespace(namespace: str | None) -> str | None:
    """-n, else STRATUM_NAMESPACE, else the config file's namespace."""
    if namespace:
        return namespace
    from stratum.client.config import load_config

    try:
        return load_config().namespace
    except ApiError as err:
        fail_api(err)


_default_namespace = default_namespace
_kind = resolve


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
            (field, _hint(documents[i].data, field, _without_field(field, c.message)))
            for c in err.causes
            if c.field.startswith(prefix)
            for field in [c.field.removeprefix(prefix).lstrip(".")]
        ]
        if fields and fields != [("", err.message)]:
            lines = [f"  {f}: {m}" if f else f"  {m}" for f, m in fields]
            text = f"{header}:\n" + "\n".join(lines)
        else:
            text = f"{header}: {err.message.split(': ', 1)[-1]}"
        clone = type(err)(text + "\nnothing was applied")
    clone.code = err.code
    return clone


def _set_namespaces(documents: list[Document], namespace: str | None, explicit: bool) -> None:
    """Put the namespace (-n or STRATUM_NAMESPACE) on namespaced objects that name none;
    an explicit -n that contradicts a manifest's own namespace is a usage error."""
    from stratum.api.v1alpha1 import resolve_kind

    if not namespace:
        return
    for d in documents:
        data = d.data
        if not isinstance(data, dict) or not isinstance(data.get("metadata"), dict):
            continue
        model = resolve_kind(str(data.get("kind", "")))
        if model is None or not model.NAMESPACED:
            continue
        own = data["metadata"].get("namespace")
        if own is None:
            data["metadata"]["namespace"] = namespace
        elif explicit and own != namespace:
            fail(
                f"{d.where}: the manifest's namespace {own!r} differs from -n {namespace!r}; "
                "drop one of them",
                code=EXIT_USAGE,
            )


def _without_field(field: str, message: str) -> str:
    """'kind: kind: x' reads as a stutter: drop the field's name from the message's start."""
    last = field.rsplit(".", 1)[-1]
    for name in (field, last):
        if name and message.startswith(f"{name}: "):
            return message[len(name) + 2 :]
    return message


def _hint(data: Any, field: str, message: str) -> str:
    """Add "did you mean" to an unknown field, from the kind's schema."""
    from stratum.api.v1alpha1 import resolve_kind
    from stratum.cli.kinds import field_names
    from stratum.cli.suggest import did_you_mean

    if field == "kind" and isinstance(data, dict):
        from stratum.api.v1alpha1 import BY_KIND

        return message + did_you_mean(str(data.get("kind", "")), BY_KIND)
    if "unknown field" not in message and "not permitted" not in message:
        return message
    model = resolve_kind(str(data.get("kind", ""))) if isinstance(data, dict) else None
    if model is None or not field:
        return message
    parts = [p for p in re.split(r"\.|\[\d+\]", field) if p]
    return message + did_you_mean(parts[-1], field_names(model, parts[:-1]))


def apply(
    filename: Annotated[
        list[str],
        typer.Option(
            "--filename",
            "-f",
            help="File, directory or - (stdin) of YAML/JSON manifests; repeatable.",
        ),
    ],
    namespace: NamespaceOpt = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-R", help="Read directories recursively.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything, write nothing.")
    ] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Then wait until every applied workload is Running."),
    ] = False,
    wait_for: Annotated[
        str,
        typer.Option("--for", help="With --wait: the state to wait for, as in `stratum wait`."),
    ] = "phase=Running",
    timeout: Annotated[
        float, typer.Option("--timeout", help="With --wait: seconds to wait at most.")
    ] = 300.0,
) -> None:
    """Create or update every object in the files, all or nothing, in one transaction.

    Namespaced objects without a namespace go to -n, or STRATUM_NAMESPACE, or the config's.
    """
    if output not in ("text", "json"):
        fail(f"--output: expected text or json, got {output!r}", code=EXIT_USAGE)
    try:
        documents = _read_documents(filename, recursive)
    except ApiError as err:
        fail_api(err, hint="nothing was applied")
    if not documents:
        fail("no objects found in the input", code=EXIT_USAGE)
    _set_namespaces(documents, default_namespace(namespace), explicit=namespace is not None)
    with _client() as client:
        try:
            results = client.apply_list([d.data for d in documents], dry_run=dry_run)
        except ApiError as err:
            fail_api(_name_documents(err, documents))
        if output == "json":
            print_json(results)
        else:
            suffix = " (dry run)" if dry_run else ""
            out = console()
            for r in results:
                ns = f" -n {r['namespace']}" if r.get("namespace") else ""
                out.print(
                    f"{r['kind'].lower()}/{r['name']}{ns} {r['action']}{suffix}", markup=False
                )
        if wait and not dry_run:
            from stratum.cli.wait import wait_all

            targets = [(r["kind"], r["name"], r.get("namespace")) for r in results]
            wait_all(client, [t for t in targets if t[0] == "Workload"], wait_for, timeout)


# -- get ---------------------------------------------------------------------------------
def get(
    kind: Annotated[
        str,
        typer.Argument(
            help="Kind, plural or short name, e.g. workloads; or all.",
            autocompletion=complete_kind,
        ),
    ],
    names: Annotated[list[str] | None, typer.Argument(help="Names; none lists all.")] = None,
    namespace: NamespaceOpt = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    selector: SelectorOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help=OUTPUT_HELP)] = "table",
    no_headers: NoHeadersOpt = False,
    watch: Annotated[
        bool,
        typer.Option("--watch", "-w", help="After listing, print a row (or object) per change."),
    ] = False,
) -> None:
    """Show objects as a table, YAML, JSON, names, JSONPath or custom columns."""
    check_output(output)
    ns = None if all_namespaces else default_namespace(namespace)
    if kind.lower() == "all":
        if names or watch:
            fail("get all takes no names and no --watch", code=EXIT_USAGE)
        _get_all(ns, selector, output, no_headers)
        return
    model = resolve(kind)
    with _client() as client:
        try:
            if names:
                if model.NAMESPACED and not ns:
                    fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
                items = [client.get(model, n, ns) for n in names]
            else:
                items = client.list(model, namespace=ns, label_selector=selector)
            where = _Where(client, model.KIND, enabled=output == "wide" or watch)
            cols = columns_for(
                model.KIND,
                namespaced=model.NAMESPACED,
                wide=output == "wide",
                where=where.on,
                now=client.server_now,
            )
            if model.KIND == "Event":  # oldest first, newest last, as they happened
                items = sorted(items, key=_event_order)
            print_objects(
                model,
                where.add(items),
                output,
                single=names is not None and len(names) == 1,
                columns=cols,
                no_headers=no_headers,
            )
            if watch:
                _watch(client, model, ns, selector, items, names, output, cols, where)
        except ApiError as err:
            fail_api(err)


def _event_order(e: dict[str, Any]) -> tuple[str, str]:
    return (e.get("spec", {}).get("lastTimestamp") or "", e["metadata"]["name"])


def _get_all(ns: str | None, selector: str | None, output: str, no_headers: bool) -> None:
    """`get all`: the workloads, placements and templates of a namespace, kind by kind."""
    from stratum.api.v1alpha1 import BY_KIND

    with _client() as client:
        try:
            found = []
            for kind in ALL_KINDS:
                model = BY_KIND[kind]
                items = client.list(model, namespace=ns, label_selector=selector)
                if items:
                    found.append((model, items))
            if output in ("yaml", "json") or output.startswith(("jsonpath=", "custom-")):
                every = [i for _, items in found for i in items]
                print_objects(
                    BY_KIND["Workload"], every, output, single=False, no_headers=no_headers
                )
                return
            if not found:
                console(stderr=True).print("No resources found.", markup=False)
            for n, (model, items) in enumerate(found):
                if n:
                    console().print("", markup=False)
                where = _Where(client, model.KIND, enabled=output == "wide")
                cols = columns_for(
                    model.KIND,
                    namespaced=True,
                    wide=output == "wide",
                    where=where.on,
                    now=client.server_now,
                )
                # kubectl's habit: kind/name in the NAME column, so kinds stay apart.
                cols = [(h, _prefixed(model.KIND, g)) if h == "NAME" else (h, g) for h, g in cols]
                print_objects(
                    model,
                    where.add(items),
                    output,
                    single=False,
                    columns=cols,
                    no_headers=no_headers,
                )
        except ApiError as err:
            fail_api(err)


def _prefixed(kind: str, getter: Any) -> Any:
    return lambda obj: f"{kind.lower()}/{getter(obj)}"


class _Where:
    """Adds where a workload or placement runs (nodes, sites, GPUs) for -o wide and -w."""

    def __init__(self, client: Any, kind: str, *, enabled: bool) -> None:
        self.client = client
        self.kind = kind
        self.on = enabled and kind in ("Workload", "Placement")
        self.sites: dict[str, str] | None = None

    def _node_sites(self, nodes: list[str]) -> dict[str, str]:
        if self.sites is None or any(n not in self.sites for n in nodes):
            try:
                self.sites = {
                    n["metadata"]["name"]: n["spec"].get("site", "")
                    for n in self.client.list("Node")
                }
            except ApiError:  # tenants do not see nodes: no SITE column then
                self.sites = {}
        return self.sites

    def add(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.on:
            return items
        if self.kind == "Workload":
            placements = {
                (p["metadata"].get("namespace"), p["metadata"]["name"]): p
                for ns in sorted({i["metadata"].get("namespace") for i in items})
                for p in (self.client.list("Placement", namespace=ns) if items else [])
            }
            pairs = [
                (
                    i,
                    placements.get(
                        (i["metadata"].get("namespace"), (i.get("status") or {}).get("placement"))
                    ),
                )
                for i in items
            ]
        else:
            pairs = [(i, i) for i in items]
        nodes = [r["node"] for _, p in pairs if p for r in p["spec"].get("replicas", [])]
        sites = self._node_sites(nodes) if nodes else {}
        return [with_where(i, p, sites) for i, p in pairs]

    def placement_of(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        if self.kind == "Placement":
            return obj
        name = (obj.get("status") or {}).get("placement")
        if not name:
            return None
        try:
            found: dict[str, Any] = self.client.get(
                "Placement", name, obj["metadata"].get("namespace")
            )
            return found
        except ApiError:
            return None

    def add_one(self, obj: dict[str, Any]) -> dict[str, Any]:
        if not self.on:
            return obj
        placement = self.placement_of(obj)
        nodes = [r["node"] for r in placement["spec"].get("replicas", [])] if placement else []
        return with_where(obj, placement, self._node_sites(nodes) if nodes else {})


def _watch(
    client: Any,
    model: Any,
    ns: str | None,
    selector: str | None,
    items: list[dict[str, Any]],
    names: list[str] | None,
    output: str,
    cols: list[Any],
    where: _Where,
) -> None:
    """Print each change as it comes: a table row, or the whole object for -o yaml|json.

    When the stream ends the watch follows again from the last version seen; when the
    server cannot be reached any more, Unavailable ends the command with exit code 3.
    """
    import json

    from stratum.core.errors import Gone

    rv = max((int(i["metadata"]["resourceVersion"]) for i in items), default=0)
    try:
        while True:
            try:
                for event in client.watch(
                    model,
                    namespace=ns,
                    label_selector=selector,
                    resource_version=str(rv) if rv else None,
                    timeout=60,
                ):
                    if event["type"] == "BOOKMARK":
                        rv = max(rv, int(event["object"]["metadata"]["resourceVersion"]))
                        continue
                    obj = event["object"]
                    rv = max(rv, int(obj["metadata"]["resourceVersion"]))
                    if names and obj["metadata"]["name"] not in names:
                        continue
                    if output == "yaml":
                        console().print("---", markup=False)
                        print_yaml(obj)
                    elif output == "json":
                        console().print(json.dumps(obj, ensure_ascii=False), markup=False)
                    else:
                        print_objects(
                            model,
                            [where.add_one(obj)],
                            output,
                            single=True,
                            columns=cols,
                            no_headers=True,
                        )
            except Gone:
                rv = 0  # history compacted: follow from now on
            # A clean end (server restart, idle stream): make sure it is still there.
            client.request("GET", "/readyz")
    except KeyboardInterrupt:
        return


# -- describe ----------------------------------------------------------------------------
def describe(
    kind: Annotated[
        str, typer.Argument(help="Kind, plural or short name.", autocompletion=complete_kind)
    ],
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
            now = client.server_now()
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
                    since("spec", "lastTimestamp", now=lambda: now)(e),
                    e["spec"].get("type", ""),
                    e["spec"].get("reason", ""),
                    _times(e["spec"], now),
                    e["spec"].get("message", ""),
                ]
                for e in events
            ],
        )


# How the runtime found a clause on the host after launch (Evidence.host).
HOST_MARKS = {
    "verified": "verified on the host",
    "not-enforceable": "not enforceable here",
    "mismatch": "NO: mismatch on the host",
    "unverified": "unverified (ended first)",
}


def evidence_mark(evidence: dict[str, Any]) -> str:
    """One evidence entry's standing: the model's (yes/NO) or the host's read-back."""
    host = evidence.get("host")
    if host:
        return HOST_MARKS.get(str(host), str(host))
    return "yes" if evidence.get("holds", True) else "NO"


def _print_clauses(obj: dict[str, Any]) -> None:
    """A Placement's evidence, or a refused Workload's reasons: one line per clause."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if obj.get("kind") == "Placement" and spec.get("evidence"):
        console().print("[bold]Evidence[/bold]")
        print_table(
            ["CLAUSE", "HOLDS", "EVIDENCE"],
            [
                [e.get("clause", ""), evidence_mark(e), e.get("message", "")]
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


def _times(spec: dict[str, Any], now: datetime | None) -> str:
    """1, or "3 (first 5m ago)" for an event that happened again."""
    count = int(spec.get("count", 1))
    if count == 1:
        return str(count)
    return f"{count} (first {since('firstTimestamp', now=lambda: now)(spec)} ago)"


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
    selector: SelectorOpt = None,
    all_objects: Annotated[
        bool, typer.Option("--all", help="Every object of the kind (in the namespace).")
    ] = False,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found")] = False,
) -> None:
    """Delete objects by kind and name, by -l selector, --all of a kind, or as in manifests."""
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
    elif kind and (names or selector or all_objects):
        model = _kind(kind)
        if names and (selector or all_objects):
            fail("give names, or -l SELECTOR, or --all: not several", code=EXIT_USAGE)
        ns = None if all_namespaces and not names else _default_namespace(namespace)
        if model.NAMESPACED and not ns and not all_namespaces:
            fail(f"{model.KIND} is namespaced: pass -n TENANT (or -A)", code=EXIT_USAGE)
        if names:
            targets = [(model, n, ns) for n in names]
        else:
            with _client() as client:
                try:
                    listed = client.list(model, namespace=ns, label_selector=selector)
                except ApiError as err:
                    fail_api(err)
            targets = [
                (model, o["metadata"]["name"], o["metadata"].get("namespace")) for o in listed
            ]
            if not targets:
                console(stderr=True).print(f"No {model.PLURAL} found.", markup=False)
                return
    else:
        fail(
            "name what to delete: KIND NAME..., KIND -l SELECTOR, KIND --all, or -f FILE",
            code=EXIT_USAGE,
        )
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
