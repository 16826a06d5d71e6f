"""Which backends a server can run, by the name a Cluster's `spec.backend` uses.

A backend plugs in by name: shipped ones are listed here as "module:factory" strings (imported
only when a server asks for them, so backends never import each other), and others register
through the `stratum.backends` entry-point group of an installed package. The controllers see
only the `Backend` protocol and the mapping this module builds; adding a backend never touches
them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from stratum.backends.base import Backend, BackendContext
from stratum.core.errors import Invalid

ENTRY_POINT_GROUP = "stratum.backends"


BackendFactory = Callable[[BackendContext], Backend]

# Shipped backends: name -> "module:callable".
_BUILTIN: dict[str, str] = {
    "simulated": "stratum.backends.simulated.backend:create",
    "local": "stratum.backends.local.backend:create",
    "agent": "stratum.backends.agent.backend:create",
    "kubernetes": "stratum.backends.kubernetes.backend:create",
}
_registered: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make a backend available under `name` (a plug-in, or a test's own)."""
    _registered[name] = factory


def known_backends() -> list[str]:
    names = set(_BUILTIN) | set(_registered)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def _factory(name: str) -> BackendFactory:
    if name in _registered:
        return _registered[name]
    target = _BUILTIN.get(name)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                loaded: BackendFactory = ep.load()
                return loaded
        raise Invalid(f"backends: no backend named {name!r}; known: {', '.join(known_backends())}")
    module, _, attr = target.partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module), attr)
    return factory


def build_backends(names: Iterable[str], context: BackendContext) -> dict[str, Backend]:
    """One backend per name, each built once with the shared context."""
    built: dict[str, Backend] = {}
    for name in names:
        if name not in built:
            built[name] = _factory(name)(context)
    return built
