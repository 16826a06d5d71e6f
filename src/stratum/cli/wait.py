"""`stratum wait KIND/NAME --for=phase=Running --timeout=60`, and `apply --wait`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stratum.cli.kinds import resolve
from stratum.cli.output import EXIT_USAGE, console, fail, fail_api
from stratum.core.errors import ApiError


def wait(
    targets: Annotated[
        list[str], typer.Argument(help="KIND/NAME..., or KIND NAME... (e.g. workload/llama).")
    ],
    wait_for: Annotated[
        str,
        typer.Option(
            "--for",
            help="phase=PHASE, condition=TYPE[=True|False], delete, or jsonpath={.path}=value.",
        ),
    ],
    namespace: Annotated[
        str | None,
        typer.Option(
            "--namespace", "-n", help="Tenant namespace (default: STRATUM_NAMESPACE or config)."
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait at most (exit 1 after).")
    ] = 30.0,
) -> None:
    """Wait until objects reach a state; exit 0 when they all do, 1 when one cannot or
    time runs out (a Rejected workload never becomes Running: that fails at once)."""
    from stratum.cli.resources import _client, default_namespace

    if "/" in targets[0]:
        pairs = [t.split("/", 1) for t in targets]
        if any(len(p) != 2 or not p[1] for p in pairs):
            fail("expected KIND/NAME for every target", code=EXIT_USAGE)
    elif len(targets) >= 2:
        pairs = [[targets[0], n] for n in targets[1:]]
    else:
        fail(f"expected KIND/NAME or KIND NAME, got {targets[0]!r}", code=EXIT_USAGE)
    ns = default_namespace(namespace)
    resolved = []
    for kind, name in pairs:
        model = resolve(kind)
        if model.NAMESPACED and not ns:
            fail(f"{model.KIND} is namespaced: pass -n TENANT", code=EXIT_USAGE)
        resolved.append((model.KIND, name, ns if model.NAMESPACED else None))
    with _client() as client:
        wait_all(client, resolved, wait_for, timeout)


def wait_all(
    client: Any, targets: list[tuple[str, str, str | None]], wait_for: str, timeout: float
) -> None:
    """Wait for each target in turn, all within one `timeout`; report each as it is met."""
    import time

    from stratum.client.waiting import parse_condition
    from stratum.client.waiting import wait_for as wait_until

    try:
        condition = parse_condition(wait_for)
    except ApiError as err:
        fail(err.message, code=EXIT_USAGE)
    deadline = time.monotonic() + timeout
    for kind, name, ns in targets:
        where = f"{kind.lower()}/{name}" + (f" -n {ns}" if ns else "")
        try:
            wait_until(
                client,
                kind,
                name,
                ns,
                condition,
                timeout=max(0.0, deadline - time.monotonic()),
            )
        except ApiError as err:
            fail_api(err)
        console().print(f"{where} condition met ({condition.text})", markup=False)
