"""The sovereignty report: one row per workload, where it runs or ran, under which law, since
when, and which policies allowed it there. Its rows are built here from wire objects, and
its columns are named here once, for the API, `stratum report sovereignty` and the portal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from stratum.core.errors import Invalid

if TYPE_CHECKING:
    from stratum.core.governance import Admission

WireObject = Mapping[str, Any]

# The row as the API serves it; "from" is a Python keyword, hence the functional form.
SovereigntyRow = TypedDict(
    "SovereigntyRow",
    {
        "tenant": str,
        "workload": str,
        "phase": str,
        "dataClassification": str | None,
        "sites": list[str],
        "countries": list[str],
        "jurisdictions": list[str],
        "from": str | None,
        "to": str | None,
        "contractJurisdictions": list[str],
        "allowedBy": list[str],
        "violations": list[str],
    },
)
# Every column, in the row's order: the portal's CSV export has them all.
COLUMNS: tuple[str, ...] = tuple(SovereigntyRow.__annotations__)
# The CLI's table and CSV (as it has always printed them): all but the contract's own
# jurisdictions and the violations' text, which the portal's CSV adds.
BRIEF_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in ("contractJurisdictions", "violations")
)


def csv_cell(value: Any) -> str:
    """A CSV cell: lists joined by spaces; a leading =+-@ quoted, so that a spreadsheet
    never runs a cell as a formula (names and classifications come from users)."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v if not isinstance(v, dict) else v.get("message", v)) for v in value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def write_csv(out: Any, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """The report as CSV (a header, then a line per row) on the text stream `out`."""
    import csv

    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])


# Policies are the platform's: their names and messages may name other tenants, so a
# tenant learns only that platform policies allowed or refused its work.
PLATFORM_POLICIES = "platform policies"
REFUSED_BY_POLICY = "refused by a platform policy"


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time of the query or of a stored object; None when empty."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-31T00:00:00Z)") from None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _aggregate(reasons: list[str]) -> list[str]:
    """Reasons as a tenant sees them: its own sovereignty terms as they are, every policy's
    refusal as one line that names none."""
    own = [r for r in reasons if not r.startswith("policy ")]
    return own + ([REFUSED_BY_POLICY] if len(own) < len(reasons) else [])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the report reads, from one snapshot of the store.

    `workloads` are whole (every optional field present, as policies see them), in the
    store's order; `placements` as stored, in the store's order (a later one of the same
    workload wins); `sites` and `tenants` whole, by name; `node_sites` each node's site."""

    workloads: Sequence[WireObject]
    placements: Sequence[WireObject]
    sites: Mapping[str, WireObject]
    node_sites: Mapping[str, str | None]
    tenants: Mapping[str, WireObject]
    policies: Sequence[WireObject]
    now: datetime


def sovereignty_rows(
    snapshot: Snapshot,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    names_policies: bool = True,
) -> list[SovereigntyRow]:
    """One row per workload that ran or runs between `since` and `until`. Without
    `names_policies` (a tenant's report) the policies that allowed or refused are not named.

    Each workload's sites are judged once per look-alike: workloads of one tenant on the same
    sites whose judged fields are equal (governance.judgement_key) share one judgement, so a
    fleet of thousands runs the sovereignty checks and policies a few dozen times."""
    # Here, not at the top: the CLI imports this module for its columns alone, and the
    # policies' CEL runtime would add a tenth of a second to every command.
    from stratum.core import governance

    bound = {
        (p["metadata"].get("namespace", ""), p["spec"].get("workload", "")): p
        for p in snapshot.placements
    }
    judged: dict[tuple[tuple[str, ...], str], Admission] = {}
    rows: list[SovereigntyRow] = []
    for w in snapshot.workloads:
        meta = w["metadata"]
        ns, name = meta.get("namespace") or "", meta["name"]
        status = w.get("status") or {}
        began = parse_time(
            status.get("boundAt") or status.get("runningAt") or meta.get("creationTimestamp")
        )
        ended = parse_time(status.get("finishedAt"))
        if (since and (ended or snapshot.now) < since) or (until and began and began > until):
            continue
        replicas = (bound.get((ns, name)) or {}).get("spec", {}).get("replicas", [])
        site_names = sorted({snapshot.node_sites.get(r.get("node"), "") or "?" for r in replicas})
        placed = [snapshot.sites[s] for s in site_names if s in snapshot.sites]
        tenant = snapshot.tenants.get(ns, {"metadata": {"name": ns}, "spec": {}, "status": {}})
        # Remembered by namespace, sites and judged fields; never shared when a policy
        # reads the workload whole (no key).
        key = governance.judgement_key(w, tenant, snapshot.policies)
        memo = ((ns, *site_names), key) if key is not None else None
        verdict = judged.get(memo) if memo is not None else None
        if verdict is None:
            verdict = governance.judge_sites(
                workload=w, tenant=tenant, sites=placed, policies=snapshot.policies
            )
            if memo is not None:
                judged[memo] = verdict
        held = sorted({p for v in verdict.sites for p in v.allowed_by})
        if placed:
            held = [p for p in held if all(p in v.allowed_by for v in verdict.sites)]
        violations = [r for v in verdict.sites if not v.allowed for r in v.reasons]
        if not names_policies:
            held = [PLATFORM_POLICIES] if held else []
            violations = _aggregate(violations)
        clause = (w.get("spec") or {}).get("contract", {}).get("sovereignty") or {}
        rows.append(
            {
                "tenant": ns,
                "workload": name,
                "phase": status.get("phase") or "Pending",
                "dataClassification": clause.get("dataClassification"),
                "sites": site_names,
                "countries": sorted({str(s["spec"]["country"]) for s in placed}),
                "jurisdictions": sorted({j for s in placed for j in s["spec"]["jurisdictions"]}),
                "from": _iso(began),
                "to": _iso(ended),
                "contractJurisdictions": clause.get("jurisdictions") or [],
                "allowedBy": held,
                "violations": violations,
            }
        )
    return rows
