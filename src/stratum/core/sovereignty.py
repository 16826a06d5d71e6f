"""The law a site must satisfy for a workload, once: the contract's sovereignty clause and
the tenant's allowed jurisdictions, as checks over a site's facts.

Admission (core/governance.py, over wire objects) and the placement engine (over every
node's site, as masks) iterate the same checks, so a site is ruled out for the same reason,
in the same words, wherever it is judged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from stratum.api.v1alpha1.contract import SovereigntyClause


@dataclass(frozen=True, slots=True)
class SiteFacts:
    name: str
    jurisdictions: frozenset[str]
    country: str
    kind: str
    provider: str


@dataclass(frozen=True, slots=True)
class LawCheck:
    clause: str  # the field that states it: "sovereignty.jurisdictions", ...
    why: str  # what a site that fails it is: "outside EU"
    holds: Callable[[SiteFacts], bool]


def law_checks(clause: SovereigntyClause, tenant_jurisdictions: Collection[str]) -> list[LawCheck]:
    """Every check the contract and the tenant state, in the order a site is charged."""
    checks: list[LawCheck] = []
    wanted = frozenset(clause.jurisdictions)
    if wanted:
        checks.append(
            LawCheck(
                "sovereignty.jurisdictions",
                f"outside {'/'.join(sorted(wanted))}",
                lambda s: bool(s.jurisdictions & wanted),
            )
        )
    allowed = frozenset(tenant_jurisdictions)
    if allowed:
        checks.append(
            LawCheck(
                "tenant.allowedJurisdictions",
                f"outside the tenant's {'/'.join(sorted(allowed))}",
                lambda s: bool(s.jurisdictions & allowed),
            )
        )
    countries = frozenset(clause.countries)
    if countries:
        checks.append(
            LawCheck(
                "sovereignty.countries",
                f"outside {'/'.join(clause.countries)}",
                lambda s: s.country in countries,
            )
        )
    kinds = frozenset(clause.site_kinds)
    if kinds:
        checks.append(
            LawCheck(
                "sovereignty.siteKinds",
                f"not at a {'/'.join(clause.site_kinds)} site",
                lambda s: s.kind in kinds,
            )
        )
    denied = frozenset(clause.deny_providers)
    if denied:
        checks.append(
            LawCheck(
                "sovereignty.denyProviders",
                f"run by {'/'.join(clause.deny_providers)}",
                lambda s: s.provider not in denied,
            )
        )
    return checks


def first_breach(site: SiteFacts, checks: list[LawCheck]) -> LawCheck | None:
    return next((c for c in checks if not c.holds(site)), None)
