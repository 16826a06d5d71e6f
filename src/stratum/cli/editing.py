"""`stratum diff -f FILE` (what apply would change) and `stratum edit KIND NAME`."""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from stratum.cli.kinds import resolve
from stratum.cli.output import EXIT_USAGE, console, fail, fail_api
from stratum.core.errors import ApiError, NotFound

# Fields the server owns: they change on every write and would drown a diff.
_VOLATILE = ("resourceVersion", "generation", "creationTimestamp", "uid", "managedFields")


def _comparable(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in _VOLATILE}
    shown = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return yaml.safe_dump({**shown, "metadata": meta}, sort_keys=True, allow_unicode=True)


def diff(
    filename: Annotated[
        list[str],
        typer.Option("--filename", "-f", help="File, directory or - of manifests; repeatable."),
    ],
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="For namespaced objects that name none."),
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-R")] = False,
) -> None:
    """Show what `apply` would change, as a unified diff of live and applied objects.

    Exit codes as kubectl's: 0 nothing would change, 1 something would; 2 usage, 3 the
    server could not be reached; a refused manifest exits 2 too (it could not be diffed).
    """
    from stratum.cli.resources import (
        _client,
        _read_documents,
        _set_namespaces,
        default_namespace,
    )

    try:
        documents = _read_documents(filename, recursive)
    except ApiError as err:
        fail(err.message, code=EXIT_USAGE)
    _set_namespaces(documents, default_namespace(namespace), explicit=namespace is not None)
    changed = False
    with _client() as client:
        for d in documents:
            data: dict[str, Any] = d.data if isinstance(d.data, dict) else {}
            meta: dict[str, Any] = data.get("metadata") or {}
            model = resolve(str(data.get("kind")))
            name, ns = str(meta.get("name")), meta.get("namespace")
            try:
                try:
                    live: dict[str, Any] | None = client.get(model, name, ns)
                except NotFound:
                    live = None
                merged = client.apply(data, dry_run=True)
            except ApiError as err:
                if err.code == 503:
                    fail_api(err)
                fail(f"{d.where}: {err.message}", code=EXIT_USAGE)
            label = f"{model.KIND.lower()}/{name}" + (f" -n {ns}" if ns else "")
            lines = list(
                difflib.unified_diff(
                    _comparable(live).splitlines(keepends=True),
                    _comparable(merged).splitlines(keepends=True),
                    fromfile=f"live {label}" if live else "/dev/null",
                    tofile=f"applied {label}",
                )
            )
            if lines:
                changed = True
                console().print("".join(lines).rstrip("\n"), markup=False, highlight=False)
    if changed:
        raise typer.Exit(1)


def _editor() -> list[str]:
    return shlex.split(
        os.environ.get("STRATUM_EDITOR")
        or os.environ.get("VISUAL")
        or os.environ.get("EDITOR")
        or "vi"
    )


def edit(
    kind: Annotated[str, typer.Argument(help="Kind, plural or short name.")],
    name: Annotated[str, typer.Argument(help="Object name.")],
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Tenant namespace (default: STRATUM_NAMESPACE)."),
    ] = None,
) -> None:
    """Open an object in $EDITOR (STRATUM_EDITOR, VISUAL, EDITOR, vi) and replace it with
    what you save. A change made by someone else meanwhile is refused (resourceVersion);
    a refused edit is kept in a file that the error names."""
    from stratum.cli.resources import _client, default_namespace

    model = resolve(kind)
    ns = default_namespace(namespace) if model.NAMESPACED else None
    if model.NAMESPACED and not ns:
        fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
    with _client() as client:
        try:
            obj = client.get(model, name, ns)
        except ApiError as err:
            fail_api(err)
        obj.pop("status", None)  # the server writes status; editing it would do nothing
        original = yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)
        header = (
            "# Edit this object; save and quit to apply, or leave it unchanged to cancel.\n"
            "# Lines starting with '#' are ignored.\n"
        )
        fd, raw = tempfile.mkstemp(prefix=f"stratum-edit-{model.KIND.lower()}-", suffix=".yaml")
        path = Path(raw)
        with os.fdopen(fd, "w") as f:
            f.write(header + original)
        if subprocess.run([*_editor(), str(path)], check=False).returncode != 0:
            fail(f"the editor failed; your edit is kept in {path}")
        text = path.read_text(encoding="utf-8")
        try:
            edited = yaml.safe_load(text)
        except yaml.YAMLError as err:
            fail(f"{path}: not valid YAML ({err}); your edit is kept there", code=EXIT_USAGE)
        if edited == obj or not isinstance(edited, dict):
            path.unlink()
            console().print("Edit cancelled, no changes made.", markup=False)
            return
        try:
            client.replace(edited)
        except ApiError as err:
            fail_api(err, hint=f"your edit is kept in {path}")
        path.unlink()
    console().print(f"{model.KIND.lower()}/{name} edited", markup=False)
