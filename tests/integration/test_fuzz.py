"""The whole API fuzzed from its own OpenAPI schema (schemathesis) against a real server on
loopback: no request gets a 500, every answer has a documented status code and content
type (and a documented body where the schema gives one), and a refused request changes
nothing (the store's resourceVersion and the token list are the same before and after).

Bounded and deterministic: a fixed number of examples per operation, derandomised
generation (the same cases on every run), and a time budget after which each remaining
operation is tried with its first example only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from stratum.core.secrets import Keyring
from stratum.server.secrets import ENV_KEYS
from stratum.testing.harness import AUTH, LiveServer
from stratum.testing.manifests import examples
from tests import EXAMPLES

API = "/apis/stratum.dev/v1alpha1"
EXAMPLES_PER_OPERATION = 8
BUDGET_SECONDS = 60.0
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def fuzz_server(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A server with keys (so that credentials are sealed, not refused) and the examples
    applied, so that some generated names find objects."""
    monkeypatch.setenv(ENV_KEYS, Keyring.generate_key())
    server = LiveServer(f"sqlite:///{tmp_path / 'stratum.db'}").start()
    httpx.post(
        f"{server.url}{API}/apply",
        headers=AUTH,
        timeout=30,
        json={"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": examples(EXAMPLES)},
    ).raise_for_status()
    yield server
    server.stop()


def _state(http: httpx.Client) -> tuple[str, int]:
    """What a refused request must leave alone: the store's resourceVersion and the tokens."""
    rv = http.get(f"{API}/sites", params={"limit": 1}).json()["metadata"]["resourceVersion"]
    return rv, len(http.get(f"{API}/tokens").json()["items"])


def _plans(operation: Any) -> list[tuple[str, Any, int]]:
    """(label, strategy, examples) for one operation: valid input, invalid input, and valid
    input aimed at a tenant that exists, so that writes reach admission and the store."""
    plans = [("positive", operation.as_strategy(GenerationMode.POSITIVE), 6)]
    if operation.method.upper() in ("POST", "PUT", "PATCH"):  # a body to break
        plans.append(("negative", operation.as_strategy(GenerationMode.NEGATIVE), 4))
    if "{namespace}" in operation.path:
        plans.append(
            (
                "in research",
                operation.as_strategy(
                    GenerationMode.POSITIVE, path_parameters={"namespace": "research"}
                ),
                4,
            )
        )
    return plans


@pytest.mark.timeout(240)
def test_fuzz_every_operation_from_the_openapi_schema(fuzz_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 100  # every kind's routes, governance, secrets, health
    failures: list[str] = []
    seen: list[int] = []
    started = time.monotonic()
    with httpx.Client(base_url=fuzz_server.url, headers=AUTH, timeout=30) as http:

        def check(case: Any) -> None:
            if case.query and str(case.query.get("watch")).lower() in ("true", "1"):
                case.query["watch"] = "false"  # a watch streams until the server stops
            before = _state(http)
            response = case.call(base_url=fuzz_server.url, headers=AUTH, timeout=30)
            seen.append(response.status_code)
            case.validate_response(response, checks=CHECKS)
            if response.status_code >= 400:
                after = _state(http)
                assert after == before, (
                    f"{case.operation.label} answered {response.status_code} but changed "
                    f"the state: {before} -> {after}\n{case.as_curl_command()}"
                )

        for operation in operations:
            over_budget = time.monotonic() - started > BUDGET_SECONDS
            for label, strategy, examples_wanted in _plans(operation):
                run = settings(
                    max_examples=1 if over_budget else examples_wanted,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )(given(case=strategy)(check))
                try:
                    run()
                except Unsatisfiable:
                    continue  # nothing in this operation can be made invalid
                except Exception as err:  # every operation runs; all failures are reported
                    failures.append(f"{operation.label} ({label}): {err}")
    assert len(seen) > 500
    assert {s // 100 for s in seen} >= {2, 4}  # it wrote and read, and it was refused
    assert not failures, "\n\n".join(failures)
