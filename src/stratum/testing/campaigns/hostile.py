"""Hostile-input campaign: seeded, generated requests over every route of the OpenAPI
schema, as a tenant member, as a token with no role and as the platform admin, with
malicious path parameters, query parameters and bodies (huge, deep, wrong types,
NaN/Infinity, odd unicode, YAML bombs, CEL-heavy policy expressions).

For every request it asserts what a user would notice:
- no 5xx;
- a refused request (4xx) changes nothing: the store's resourceVersion (every object and
  audit record bumps it), the tokens and the faults in force are as before;
- no role, and a tenant member outside its tenant, never get a write accepted;
- no single request stalls the event loop: a prober hits /healthz every few ms; a request
  during which a probe took over 100 ms is replayed alone three times, and it is a stall
  only when every replay shows it again (a loaded machine delays probes on its own);
- the server's RSS stays bounded.
The server runs without controllers, so only the campaign's requests change the store.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stratum.api.v1alpha1 import KINDS
from stratum.server.demo import demo_manifests
from stratum.testing.campaigns.record import Record, percentile
from stratum.testing.campaigns.servers import ServerProcess, new_admin_token

API = "/apis/stratum.dev/v1alpha1"
SIM = "/apis/sim.stratum.dev/v1alpha1"
ROLES = ("tenant", "none", "admin")
TENANT = "research"
TENANT_SUBJECT = "grace@example.org"  # a member of research in the demo fleet
STALL_MS = 100.0

# Findings the security work already knows about and is fixing on its own branches: a
# finding whose text matches is filed as known (with the finding's name), not as new.
KNOWN: tuple[tuple[str, str], ...] = (
    (r"^none: (POST|DELETE) /apis/sim\.stratum\.dev", "fault injection without role"),
    (r"^(none|tenant): POST /apis/stratum\.dev/v1alpha1/tokens", "tokens minted for any subject"),
    (r"\[nan-json,", "Infinity/NaN"),
    (r"\[yaml-bomb,", "YAML bomb"),
    (r"\[(yaml|yaml-huge), .*stalls the event loop", "YAML parsed on the event loop (4 MiB stall)"),
    (r"\[cel-heavy,", "CEL blow-up"),
    (r"\[(deep|huge-int|naive-date),", "deep nesting / huge ints / naive dates 500"),
    (r"\[newline-name,", "newline names"),
)


@dataclass(frozen=True, slots=True)
class HostileSettings:
    requests: int = 300
    seed: int = 3
    # Each body family's weight; the expensive ones are rare so a run stays short.
    families: dict[str, float] = field(
        default_factory=lambda: {
            "valid": 4.0,
            "mutated": 8.0,
            "wrong-type": 3.0,
            "nan-json": 1.0,
            "huge-int": 1.0,
            "deep": 1.0,
            "unicode": 2.0,
            "not-json": 2.0,
            "naive-date": 1.0,
            "newline-name": 1.0,
            "huge": 0.3,
            "yaml": 1.0,
            "yaml-bomb": 0.3,
            "yaml-huge": 0.1,
            "cel-heavy": 0.6,
        }
    )
    probe_every_ms: float = 10.0
    replays: int = 3
    # Bounded memory: the RSS may grow by at most this much over the run.
    max_rss_growth_mib: float = 300.0


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    has_body: bool


@dataclass
class Case:
    """One generated request."""

    role: str
    family: str
    method: str
    url: str
    params: dict[str, str]
    content: bytes | None
    content_type: str | None
    template: str

    def describe(self) -> str:
        size = len(self.content or b"")
        query = ("?" + urllib.parse.urlencode(self.params))[:120] if self.params else ""
        return (
            f"{self.role}: {self.method} {self.url[:160]}{query} "
            f"[{self.family}, {size} B {self.content_type or ''}]"
        )


# -- the route table ----------------------------------------------------------------------


def operations(schema: dict[str, Any]) -> list[Operation]:
    ops = []
    for path, methods in sorted(schema.get("paths", {}).items()):
        for method, op in sorted(methods.items()):
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = op.get("parameters", [])
            ops.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in params if p.get("in") == "path"),
                    query_params=tuple(p["name"] for p in params if p.get("in") == "query"),
                    has_body="requestBody" in op or method in ("post", "put", "patch"),
                )
            )
    return ops


_PLURALS = {k.PLURAL: k.KIND for k in KINDS}

GOOD_NAMES = (
    "research",
    "health-eu",
    "catalog",
    "stratum-system",
    "llama-finetune",
    "chat-us",
    "fra-1",
    "fra-1-hgx",
    "personal-data-stays-in-eu",
    "llm-inference-1.0.0",
    "hgx-h100-80gb",
    "fra-1-hgx-h100-001",
    "000000000001",
    "nope",
)
BAD_NAMES = (
    "",
    "a" * 300,
    "..",
    "../../etc/passwd",
    "%2e%2e%2f",
    "UPPER_case",
    "x\u202ey",
    "名前",
    "emoji-\U0001f600",
    "a\nb",
    "' OR '1'='1",
    "{{7*7}}",
    "-leading-dash",
    "a" * 5000,
    "\ud800",
)
GOOD_QUERY = ("1", "10", "500", "true", "false", "All", "research", "app=web", "0")
BAD_QUERY = (
    "-1",
    "1e309",
    "NaN",
    "Infinity",
    "99999999999999999999999999",
    "'; DROP TABLE objects; --",
    "a" * 5000,
    "env in (",
    "!!!",
    "," * 500,
    "x" * 64 + "=" + "y" * 64,
    "\u0000",
    "2026-13-45T99:99:99",
    "",
)


def _manifest_for(kind: str, name: str | None, namespace: str | None) -> dict[str, Any]:
    for m in demo_manifests():
        if m.get("kind") == kind:
            body: dict[str, Any] = copy.deepcopy(m)
            break
    else:
        body = {"apiVersion": "stratum.dev/v1alpha1", "kind": kind, "metadata": {}, "spec": {}}
    meta = body.setdefault("metadata", {})
    if name is not None:
        meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    return body


def _kind_of(path: str) -> str | None:
    for part in reversed(path.split("/")):
        if part in _PLURALS:
            return _PLURALS[part]
    return None


HOSTILE_VALUES: tuple[Any, ...] = (
    None,
    True,
    -1,
    0,
    2**31,
    1.5,
    "",
    "x" * 70_000,
    [],
    {},
    [[[[[]]]]],
    {"$ne": 1},
    "\u202e\u0000",
    "💥" * 100,
    "1970-01-01T00:00:00",
    "\\",
)


def _mutate(rng: random.Random, body: Any, depth: int = 0) -> Any:
    """Replace one random leaf (or drop/add a key) somewhere in a manifest."""
    if isinstance(body, dict) and body and depth < 8:
        key = rng.choice(sorted(body))
        choice = rng.random()
        if choice < 0.15:
            body.pop(key)
        elif choice < 0.25:
            body[f"unknown{rng.randrange(100)}"] = rng.choice(HOSTILE_VALUES)
        elif isinstance(body[key], dict | list) and body[key] and choice < 0.8:
            body[key] = _mutate(rng, body[key], depth + 1)
        else:
            body[key] = rng.choice(HOSTILE_VALUES)
        return body
    if isinstance(body, list) and body and depth < 8:
        i = rng.randrange(len(body))
        body[i] = _mutate(rng, body[i], depth + 1)
        return body
    return rng.choice(HOSTILE_VALUES)


def _body(
    rng: random.Random, family: str, kind: str | None, name: str | None, ns: str | None
) -> tuple[bytes, str]:
    """(content, content type) of one body family."""
    js = "application/json"
    base = _manifest_for(kind or "Workload", name, ns)
    if family == "valid":
        return json.dumps(base).encode(), js
    if family == "mutated":
        for _ in range(rng.randint(1, 3)):
            base = _mutate(rng, base)
        return json.dumps(base).encode(), js
    if family == "wrong-type":
        return json.dumps(rng.choice([[base], "text", 42, None, True, [], {}])).encode(), js
    if family == "nan-json":
        text = json.dumps(base)
        token = rng.choice(["NaN", "Infinity", "-Infinity", "1e309"])
        if '"gpuMilli": ' in text:
            text = re.sub(r'"gpuMilli": [^,}]+', f'"gpuMilli": {token}', text, count=1)
        else:
            text = text[:-1] + f', "spec2": {token}}}'
            text = text.replace('"spec": {', f'"spec": {{"x": {token}, ', 1)
        return text.encode(), js
    if family == "huge-int":
        text = json.dumps(base).replace('"spec": {', '"spec": {"replicas": ' + "9" * 5000 + ",", 1)
        return text.encode(), js
    if family == "deep":
        n = rng.choice([1000, 5000, 50_000])
        return ("[" * n + "]" * n).encode(), js
    if family == "unicode":
        meta = base.setdefault("metadata", {})
        meta.setdefault("labels", {})["k"] = rng.choice(["\u202e", "名前", "\U0001f600", "a\u0301"])
        meta["annotations"] = {"note": "\ud83d" + "x" * 10}
        return json.dumps(base, ensure_ascii=rng.random() < 0.5).encode(
            "utf-8", "surrogatepass"
        ), js
    if family == "not-json":
        return rng.choice([b"", b"   ", b"\xff\xfe\x00", b"{", b"null", b"[]", b'"s"', b"{}"]), (
            rng.choice([js, "text/plain", "application/x-www-form-urlencoded", "application/yaml"])
        )
    if family == "naive-date":
        base.setdefault("status", {})["boundAt"] = "2026-01-01T00:00:00"
        base.setdefault("metadata", {})["creationTimestamp"] = "2026-01-01T00:00:00"
        return json.dumps(base).encode(), js
    if family == "newline-name":
        base.setdefault("metadata", {})["name"] = "bad\nname"
        return json.dumps(base).encode(), js
    if family == "huge":
        base.setdefault("metadata", {}).setdefault("annotations", {})["big"] = "x" * (
            rng.choice([2, 6, 20]) * 2**20
        )
        return json.dumps(base).encode(), js
    if family == "yaml":
        import yaml

        return yaml.safe_dump(base).encode(), "application/yaml"
    if family == "yaml-bomb":
        lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        for i in range(1, 9):
            prev = chr(ord("a") + i - 1)
            cur = chr(ord("a") + i)
            lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
        return ("\n".join(lines) + "\n").encode(), "application/yaml"
    if family == "yaml-huge":
        import yaml

        base.setdefault("metadata", {}).setdefault("annotations", {})["big"] = "y" * (4 * 2**20)
        return yaml.safe_dump(base).encode(), "application/yaml"
    if family == "cel-heavy":
        expression = rng.choice(
            [
                "'" + "a" * 22 + "!'.matches('(a+)+$')",
                "[" + ",".join(["1"] * 200) + "].all(x, [" + ",".join(["1"] * 200) + "]"
                ".all(y, [" + ",".join(["1"] * 50) + "].all(z, x + y + z > 0)))",
                " || ".join(["site.spec.country == 'DE'"] * 3000),
                "'x'" + " + 'xxxxxxxxxxxxxxxx'" * 5000 + " == ''",
            ]
        )
        policy = {
            "apiVersion": "stratum.dev/v1alpha1",
            "kind": "Policy",
            "metadata": {"name": name or f"heavy-{rng.randrange(1000)}"},
            "spec": {"expression": expression, "action": "deny", "message": "heavy"},
        }
        return json.dumps(policy).encode(), js
    raise ValueError(f"unknown body family {family!r}")


def generate(rng: random.Random, ops: list[Operation], s: HostileSettings) -> Case:
    op = rng.choice(ops)
    role = rng.choice(ROLES)
    values: dict[str, str] = {}
    for p in op.path_params:
        good = rng.random() < 0.7
        pool = GOOD_NAMES if good else BAD_NAMES
        values[p] = TENANT if p == "namespace" and good and rng.random() < 0.5 else rng.choice(pool)
    url = op.path
    for p, v in values.items():
        url = url.replace("{" + p + "}", urllib.parse.quote(v, safe="", errors="surrogatepass"))
    params: dict[str, str] = {}
    for q in op.query_params:
        if rng.random() < 0.5:
            params[q] = rng.choice(GOOD_QUERY if rng.random() < 0.5 else BAD_QUERY)
    if rng.random() < 0.1:
        params[rng.choice(["x", "limit", "dryRun", "labelSelector"])] = rng.choice(BAD_QUERY)
    if "watch" in params:
        params["watch"] = "false"  # a watch streams until the server stops
    content: bytes | None = None
    content_type: str | None = None
    family = "none"
    if op.has_body:
        names = list(s.families)
        family = rng.choices(names, weights=[s.families[n] for n in names])[0]
        kind = _kind_of(op.path)
        if op.path.endswith("/apply") and family in ("valid", "mutated"):
            items = [_manifest_for(rng.choice(["Workload", "Policy", "Site"]), None, None)]
            if family == "mutated":
                items = [_mutate(rng, items[0])]
            content, content_type = (
                json.dumps(
                    {"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": items}
                ).encode(),
                "application/json",
            )
        elif op.path.endswith("/faults") and family in ("valid", "mutated"):
            fault: Any = {"kind": "gpu-fail", "node": "fra-1-hgx-h100-001", "gpu": 0}
            if family == "mutated":
                fault = _mutate(rng, fault)
            content, content_type = json.dumps(fault).encode(), "application/json"
        elif op.path.endswith("/tokens") and family in ("valid", "mutated"):
            token: Any = {"name": "t", "subject": rng.choice(["admin", "ada@example.org", None])}
            if family == "mutated":
                token = _mutate(rng, token)
            content, content_type = json.dumps(token).encode(), "application/json"
        else:
            content, content_type = _body(
                rng, family, kind, values.get("name"), values.get("namespace")
            )
    return Case(role, family, op.method, url, params, content, content_type, op.path)


# -- the run -----------------------------------------------------------------------------


class Prober:
    """GET /healthz in a loop on its own connection: (start, latency ms) of each probe."""

    def __init__(self, url: str, every_ms: float) -> None:
        self.url = url
        self.every = every_ms / 1000
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            while not self._stop.is_set():
                began = time.monotonic()
                with contextlib.suppress(httpx.TransportError):
                    http.get("/healthz")
                self.samples.append((began, (time.monotonic() - began) * 1000))
                self._stop.wait(self.every)

    def worst_during(self, start: float, end: float) -> float:
        """The slowest probe that was in flight at any time in [start, end]."""
        return max(
            (ms for began, ms in self.samples if began <= end and began + ms / 1000 >= start),
            default=0.0,
        )


def run_hostile(home: Path, settings: HostileSettings | None = None) -> Record:
    s = settings or HostileSettings()
    record = Record("hostile", s.seed)
    rng = random.Random(s.seed)
    admin = new_admin_token()
    server = ServerProcess(
        f"sqlite:///{home / 'stratum.db'}", home, "--no-controllers", token=admin
    ).start()
    began = time.monotonic()
    try:
        http = httpx.Client(base_url=server.url, timeout=120)
        admin_h = {"Authorization": f"Bearer {admin}"}
        _setup(http, admin_h)
        tokens = {
            "admin": admin,
            "tenant": _token(http, admin_h, "hostile-member", TENANT_SUBJECT),
            "none": _token(http, admin_h, "hostile-nobody", "nobody@example.org"),
        }
        ops = operations(http.get("/openapi.json").json())
        record.figures["operations"] = len(ops)
        with Prober(server.url, s.probe_every_ms) as baseline:
            time.sleep(3)
        base = [ms for _, ms in baseline.samples]
        record.figures["probe baseline ms p50/p99/max"] = [
            round(percentile(base, 50), 1),
            round(percentile(base, 99), 1),
            round(max(base, default=0), 1),
        ]
        rss_start = server.rss_mib()
        rss_max = rss_start
        statuses: dict[str, int] = {}
        suspects: list[tuple[Case, float]] = []
        state = _state(http, admin_h)
        with Prober(server.url, s.probe_every_ms) as prober:
            for i in range(s.requests):
                case = generate(rng, ops, s)
                record.inputs[f"{case.role} {case.family}"] += 1
                start = time.monotonic()
                status = _send(http, case, tokens)
                end = time.monotonic()
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                if status == 0:
                    record.finding(f"{case.describe()}: no answer (connection dropped)")
                    if not server.alive:
                        record.finding(f"the server died: {server.read_log()[-1500:]}")
                        break
                elif status >= 500:
                    record.finding(f"{case.describe()}: answered {status}")
                after = _state(http, admin_h)
                if 400 <= status < 500 and after != state:
                    record.finding(
                        f"{case.describe()}: refused with {status} but changed the state "
                        f"({_diff(state, after)})"
                    )
                if 200 <= status < 300 and case.method != "GET" and after != state:
                    _check_authority(case, record)
                state = after
                worst = prober.worst_during(start, end)
                if worst > STALL_MS:
                    suspects.append((case, worst))
                if i % 25 == 0:
                    rss_max = max(rss_max, server.rss_mib())
                if i % 100 == 99:
                    _setup(http, admin_h)  # admins may delete the fixtures: put them back
                    state = _state(http, admin_h)
            probes = [ms for _, ms in prober.samples]
        rss_end = server.rss_mib()
        rss_max = max(rss_max, rss_end)
        record.figures["statuses"] = dict(sorted(statuses.items()))
        record.figures["probe during campaign ms p50/p99/max"] = [
            round(percentile(probes, 50), 1),
            round(percentile(probes, 99), 1),
            round(max(probes, default=0), 1),
        ]
        record.figures["probes over 100 ms"] = sum(ms > STALL_MS for ms in probes)
        record.figures["stall suspects replayed"] = len(suspects)
        _replay(http, tokens, suspects, s, server, record)
        record.figures["rss MiB start/max/end"] = [
            round(rss_start, 1),
            round(rss_max, 1),
            round(rss_end, 1),
        ]
        if rss_end - rss_start > s.max_rss_growth_mib:
            record.finding(
                f"RSS grew from {rss_start:.0f} to {rss_end:.0f} MiB "
                f"(bound +{s.max_rss_growth_mib:.0f} MiB)"
            )
        http.close()
    finally:
        if server.alive:
            server.stop()
        record.seconds = time.monotonic() - began
    record.figures["known findings"] = sorted({known(f) for f in record.findings} - {None})
    return record


def known(finding: str) -> str | None:
    """The name of the known (already reported) issue a finding is, or None when new."""
    for pattern, name in KNOWN:
        if re.search(pattern, finding):
            return name
    return None


def new_findings(record: Record) -> list[str]:
    return [f for f in record.findings if known(f) is None]


def _setup(http: httpx.Client, headers: dict[str, str]) -> None:
    body = {"apiVersion": "stratum.dev/v1alpha1", "kind": "List", "items": demo_manifests()}
    http.post(f"{API}/apply", json=body, headers=headers).raise_for_status()


def _token(http: httpx.Client, headers: dict[str, str], name: str, subject: str) -> str:
    r = http.post(f"{API}/tokens", json={"name": name, "subject": subject}, headers=headers)
    r.raise_for_status()
    value: str = r.json()["token"]
    return value


def _send(http: httpx.Client, case: Case, tokens: dict[str, str]) -> int:
    # A fresh connection per request: a body refused early (413) ends its connection.
    headers = {"Authorization": f"Bearer {tokens[case.role]}", "Connection": "close"}
    if case.content_type:
        headers["Content-Type"] = case.content_type
    try:
        r = http.request(
            case.method, case.url, params=case.params, content=case.content, headers=headers
        )
    except (httpx.TransportError, httpx.InvalidURL, UnicodeEncodeError):
        return 0
    return r.status_code


def _state(http: httpx.Client, headers: dict[str, str]) -> tuple[str, int, str]:
    """What a refused request must leave alone: the store's resourceVersion, the token
    list and the faults in force."""
    for _ in range(3):
        with contextlib.suppress(httpx.TransportError):
            return _read_state(http, headers)
        time.sleep(0.5)
    return _read_state(http, headers)


def _read_state(http: httpx.Client, headers: dict[str, str]) -> tuple[str, int, str]:
    rv = http.get(f"{API}/sites", params={"limit": 1}, headers=headers).json()["metadata"][
        "resourceVersion"
    ]
    tokens = len(http.get(f"{API}/tokens", headers=headers).json()["items"])
    # A server without controllers runs no simulator: its fault routes answer 404.
    listing = http.get(f"{SIM}/faults", headers=headers).json()
    faults = json.dumps([f["id"] for f in listing.get("items", [])])
    return str(rv), tokens, faults


def _diff(before: tuple[str, int, str], after: tuple[str, int, str]) -> str:
    names = ("resourceVersion", "tokens", "faults")
    return ", ".join(
        f"{n} {a!s:.40} -> {b!s:.40}"
        for n, a, b in zip(names, before, after, strict=True)
        if a != b
    )


def _check_authority(case: Case, record: Record) -> None:
    """A write that changed the state: was the caller allowed to make it?"""
    if case.role == "none":
        record.finding(f"{case.describe()}: a write with no role was accepted")
    elif case.role == "tenant":
        path = case.url
        in_tenant = f"/namespaces/{TENANT}/workloads" in path or (
            f"/namespaces/{TENANT}/workloadtemplates" in path
        )
        if path.endswith("/apply"):
            items = json.loads(case.content or b"{}").get("items") or []
            foreign = [
                f"{i.get('kind')} {(i.get('metadata') or {}).get('namespace')}"
                for i in items
                if isinstance(i, dict)
                and (
                    i.get("kind") not in ("Workload", "WorkloadTemplate")
                    or (i.get("metadata") or {}).get("namespace") != TENANT
                )
            ]
            if foreign:
                record.finding(f"{case.describe()}: a tenant member applied {foreign}")
        elif path.endswith("/tokens"):
            # A member may make tokens for itself; for anyone else it is a hole.
            asked = json.loads(case.content or b"{}")
            subject = asked.get("subject") if isinstance(asked, dict) else None
            if subject not in (None, TENANT_SUBJECT) or (
                isinstance(asked, dict) and asked.get("role") not in (None, "member")
            ):
                record.finding(f"{case.describe()}: a tenant member made a token for {subject!r}")
        elif not in_tenant:
            record.finding(f"{case.describe()}: a tenant member's write outside its tenant")


def _replay(
    http: httpx.Client,
    tokens: dict[str, str],
    suspects: list[tuple[Case, float]],
    s: HostileSettings,
    server: ServerProcess,
    record: Record,
) -> None:
    """Send each stall suspect again, alone, `replays` times: a stall only if every replay
    shows a probe over 100 ms too. The worst suspects first; at most 20."""
    confirmed = 0
    for case, first in sorted(suspects, key=lambda x: -x[1])[:20]:
        worst: list[float] = []
        for _ in range(s.replays):
            with Prober(server.url, s.probe_every_ms) as prober:
                time.sleep(0.05)
                start = time.monotonic()
                _send(http, case, tokens)
                end = time.monotonic()
                time.sleep(0.05)
            worst.append(prober.worst_during(start, end))
        if min(worst) > STALL_MS:
            confirmed += 1
            record.finding(
                f"{case.describe()}: stalls the event loop "
                f"(probes {first:.0f}, then {', '.join(f'{w:.0f}' for w in worst)} ms)"
            )
    record.figures["stalls confirmed"] = confirmed
