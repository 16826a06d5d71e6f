"""The portal in a real browser (Debian's chromium, driven by Playwright) against a real
`stratum serve` child process with the demo fleet: log in and browse down to a node's
topology, launch from the catalog (a bad parameter, then a good one), watch a contract
turn Violated and heal without a reload, and a tenant kept out of another tenant's work.
Every page is screenshotted into the artefacts folder the module prints; any browser
console error fails the test that caused it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratum.testing import browser
from stratum.testing.harness import ServerProcess, run_cli

pytestmark = pytest.mark.skipif(browser.missing() is not None, reason=browser.missing() or "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from stratum.client.http import StratumClient
    from stratum.server.demo import demo_manifests
    from stratum.testing.waits import wait_for

    home = tmp_path_factory.mktemp("portal")
    proc = ServerProcess(f"sqlite:///{home / 'portal.db'}", home)
    proc.start()
    try:
        with StratumClient(proc.url, proc.token) as client:
            client.apply_list(demo_manifests())
            # The pages are checked against the demo as it runs (llama-finetune holding all
            # eight GPUs of its node): wait for every demo workload to run first.
            wait_for(
                client,
                "Workload",
                lambda ws: (
                    bool(ws)
                    and all(w.get("status", {}).get("phase") == "Running" for w in ws.values())
                ),
                timeout=180,
            )
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots() -> Path:
    path = browser.artifacts_dir("portal")
    print(f"\nportal screenshots: {path}")
    return path


@pytest.fixture
def console() -> Iterator[browser.Console]:
    seen = browser.Console()
    yield seen
    assert seen.take() == [], "the browser logged errors"


def _login(chromium: Any, console: browser.Console, server: ServerProcess, token: str) -> Any:
    context = chromium.new_context(viewport=browser.VIEWPORT, base_url=server.url)
    page = console.watch(context.new_page())
    page.goto("/")
    assert page.url.endswith("/login?next=/")
    page.fill("#token", token)
    page.keyboard.press("Enter")  # keyboard only: the form submits from the field
    page.wait_for_url(server.url + "/")
    return page


def _shot(page: Any, shots: Path, name: str) -> None:
    page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_login_then_browse_the_fleet_down_to_a_node_topology(
    chromium: Any, console: browser.Console, server: ServerProcess, shots: Path
) -> None:
    page = _login(chromium, console, server, server.token)
    assert page.locator("article.site").count() == 3  # the demo's three sites
    page.get_by_role("link", name="Fleet", exact=True).click()
    page.get_by_role("link", name="fra-1-hgx", exact=True).click()
    _shot(page, shots, "fleet-cluster")
    page.get_by_role("link", name="fra-1-hgx-h100-001", exact=True).click()
    svg = page.locator("svg.topology")
    assert svg.locator("g.gpu").count() == 8
    assert svg.locator("text.socket-label").count() == 2
    assert "NVLink domain nvl0 (8 GPUs)" in (svg.text_content() or "")
    # llama-finetune holds all eight GPUs: each is drawn in research's colour.
    assert page.locator("svg.topology rect.share").count() == 8
    _shot(page, shots, "node-topology")
    for path, name in (
        ("/", "overview"),
        ("/fleet", "fleet"),
        ("/catalog", "catalog"),
        ("/workloads", "workloads"),
        ("/tenants", "tenants"),
        ("/audit", "audit"),
    ):
        page.goto(path)
        assert page.locator("h1").count() == 1
        _shot(page, shots, name)
    assert page.locator("[data-audit-ok=true]").count() == 1
    csv = page.request.get("/audit/sovereignty.csv")
    assert csv.status == 200 and "research,llama-finetune" in csv.text()
    # Keyboard: the first Tab reaches the skip link, and it moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.context.close()


def test_launch_from_the_catalog_bad_parameter_then_bound_with_evidence(
    chromium: Any, console: browser.Console, server: ServerProcess, shots: Path
) -> None:
    page = _login(chromium, console, server, server.token)
    page.get_by_role("link", name="Catalog", exact=True).click()
    page.get_by_role("link", name="inference-service").click()
    page.select_option("#tenant", "research")
    page.fill("#name", "portal-chat")
    page.fill("#p-model", "mistral-7b")
    page.fill("#p-gpuMilli", "5000")
    page.get_by_role("button", name="Launch").click()
    error = page.locator("[data-field=gpuMilli] .field-error")
    assert "5000 is greater than the maximum of 999" in error.inner_text()
    assert page.locator("[data-field=model] .field-error").count() == 0
    _shot(page, shots, "launch-field-error")
    page.fill("#p-gpuMilli", "250")
    page.get_by_role("button", name="Preview").click()
    assert re.search(r"Would run now on \S+", page.locator("#preview").inner_text())
    _shot(page, shots, "launch-preview")
    page.get_by_role("button", name="Launch").click()
    page.wait_for_url(server.url + "/workloads/research/portal-chat")
    # Bound (then Running) arrives through the watch stream, with no reload.
    page.wait_for_selector("h1 [data-phase=Running], h1 [data-phase=Bound]", timeout=30_000)
    sovereignty = page.locator("tr[data-clause=sovereignty]").inner_text()
    assert "jurisdictions EU" in sovereignty and "✓" in sovereignty
    assert page.locator("#placement svg.topology").count() == 2  # spread over two sites
    _shot(page, shots, "workload-bound")
    page.context.close()


def test_a_fault_turns_the_contract_violated_then_healed_without_a_reload(
    chromium: Any, console: browser.Console, server: ServerProcess, shots: Path
) -> None:
    from stratum.client.http import StratumClient
    from stratum.testing.waits import wait_for

    with StratumClient(server.url, server.token) as client:
        client.create(
            {
                "apiVersion": "stratum.dev/v1alpha1",
                "kind": "Workload",
                "metadata": {"name": "portal-watch", "namespace": "research"},
                "spec": {
                    "type": "training",
                    "contract": {
                        "compute": {"gpus": 2, "models": ["A100-SXM4-80GB"]},
                        "topology": {"withinReplica": "nvlink"},
                        "lifecycle": {"onViolation": "report"},  # stays Violated until healed
                    },
                },
            }
        )
        wait_for(
            client,
            "Workload",
            lambda ws: (
                ws.get("research/portal-watch", {}).get("status", {}).get("phase") == "Running"
            ),
            timeout=60,
        )
        replica = client.get("Placement", "portal-watch", "research")["spec"]["replicas"][0]
    page = _login(chromium, console, server, server.token)
    page.goto("/workloads/research/portal-watch")
    page.evaluate("window.__sameDocument = true")
    env = {"STRATUM_SERVER": server.url}
    injected = run_cli(
        "fault",
        "inject",
        "link-degrade",
        "--node",
        replica["node"],
        "--gpu",
        str(replica["gpus"][0]),
        env=env,
    )
    assert injected.returncode == 0, injected.stderr
    page.wait_for_selector("h1 [data-phase=Violated]", timeout=30_000)
    assert "NVLink of GPU" in page.locator("tr[data-clause=topology].broken").inner_text(
        timeout=3000
    )
    _shot(page, shots, "workload-violated")
    cleared = run_cli("fault", "clear", env=env)
    assert cleared.returncode == 0, cleared.stderr
    page.wait_for_selector("h1 [data-phase=Running]", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True  # never reloaded
    _shot(page, shots, "workload-healed")
    page.context.close()


def test_a_tenant_sees_only_its_own_workloads_even_by_url(
    chromium: Any, console: browser.Console, server: ServerProcess, shots: Path
) -> None:
    from stratum.client.http import StratumClient

    with StratumClient(server.url, server.token) as client:
        token = client.create_token(
            "portal-health", subject="svc-portal", tenant="health-eu", role="member", service=True
        )["token"]
    page = _login(chromium, console, server, token)
    assert "triage-assistant" in page.content()
    page.goto("/workloads")
    listed = page.locator("tr[data-workload]").all_inner_texts()
    assert listed and all(row.startswith("health-eu/") for row in listed)
    assert "llama-finetune" not in page.content()
    _shot(page, shots, "tenant-workloads")
    response = page.goto("/workloads/research/llama-finetune")
    assert response is not None and response.status == 404
    assert 'namespace "research" not found' in page.locator("[data-status]").inner_text()
    _shot(page, shots, "tenant-refused")
    assert page.goto("/fleet/nodes/fra-1-hgx-h100-001").status == 403
    csv = page.request.get("/audit/sovereignty.csv").text()
    assert "health-eu,triage-assistant" in csv and "research" not in csv
    # The browser reports the two refused loads; nothing else may be in the console.
    assert [e for e in console.take() if "status of 40" not in e] == []
    page.context.close()
