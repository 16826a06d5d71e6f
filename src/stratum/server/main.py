"""The one way a Stratum server starts: `stratum serve` and `stratum up` both call `run`.

In order: the port is checked (before anything is created, so a busy port leaves no store and
shows no token), the secret key file is found or made, the store opens on the process's one
clock, the demo fleet is seeded when asked, the app is built with its backends, the first
platform-admin token is made on a new store, and uvicorn serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from stratum.core.clock import make_clock
from stratum.core.errors import StratumError
from stratum.server.settings import ServerSettings
from stratum.store.objects import ObjectStore

if TYPE_CHECKING:
    from stratum.server.watch import ChangeNotifier

log = logging.getLogger("stratum.server")


class PortInUse(StratumError):
    """The address the server was asked to listen on is taken."""


@dataclass(frozen=True, slots=True)
class DemoSeeded:
    created: int
    reused: int


@dataclass(frozen=True, slots=True)
class Startup:
    """What a starting server tells the person who started it."""

    base_url: str
    store: str  # the store's URL, password hidden
    admin_token: str | None  # the first admin token, when this start made one to show
    admin_token_file: Path | None  # where the admin token is, when it went to a file
    demo: DemoSeeded | None
    speed: float


def check_port(host: str, port: int) -> None:
    """Refuse a port something already listens on, before any state is created."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise PortInUse(
                f"--port {port}: {host}:{port} is already in use ({err.strerror}); stop what "
                "listens there or choose another --port"
            ) from None


def default_key_file(
    url: str,
    *,
    env: str | None = None,
    name: str | None = None,
    what: str = "secret key for stored credentials",
    backup: str = "back it up; without it they cannot be read",
) -> Path | None:
    """$STRATUM_HOME/secret.key (or `name`) when no key is configured: used if it exists,
    created (mode 0600) for an SQLite store. Replicas on PostgreSQL must share their keys,
    so none is made for them: configure STRATUM_SECRET_KEYS or --secret-key-file (or the
    audit key's `env` and option) on each."""
    from stratum.server.secrets import DEFAULT_KEY_FILE, ENV_KEYS, create_key_file
    from stratum.store.database import stratum_home

    env = env or ENV_KEYS
    if (os.environ.get(env) or "").strip():
        return None
    path = stratum_home() / (name or DEFAULT_KEY_FILE)
    if path.exists():
        return path
    if not url.startswith("sqlite"):
        if env == ENV_KEYS:
            log.warning(
                "no secret key (%s or --secret-key-file): this server will refuse to "
                "store cluster credentials",
                ENV_KEYS,
            )
        return None  # the audit trail warns for itself
    create_key_file(path)
    log.warning("made a %s in %s (mode 0600): %s", what, path, backup)
    return path


def with_default_keys(settings: ServerSettings) -> ServerSettings:
    """The secret and audit key files and the audit anchor where none is configured."""
    import dataclasses

    from stratum.server.audit_trail import (
        DEFAULT_ANCHOR_FILE,
        DEFAULT_AUDIT_KEY_FILE,
        ENV_AUDIT_KEYS,
    )
    from stratum.store.database import stratum_home

    url = settings.database_url
    changes: dict[str, Any] = {}
    if settings.secret_key_file is None and settings.secret_keys is None:
        changes["secret_key_file"] = default_key_file(url)
    if settings.audit_key_file is None and settings.audit_keys is None:
        changes["audit_key_file"] = default_key_file(
            url,
            env=ENV_AUDIT_KEYS,
            name=DEFAULT_AUDIT_KEY_FILE,
            what="key that signs the audit log",
            backup="back it up and never retire it; without it the log cannot be verified",
        )
    if settings.audit_anchor_file is None:
        changes["audit_anchor_file"] = stratum_home() / DEFAULT_ANCHOR_FILE
    return dataclasses.replace(settings, **changes)


def seed_demo(store: ObjectStore, extra: Sequence[dict[str, Any]] = ()) -> DemoSeeded:
    """Apply the demo fleet, and `extra` objects (`up --local`: this host's Site and
    Cluster); idempotent: a second start on the same store reuses them."""
    from stratum.server.demo import demo_manifests
    from stratum.server.security import system_context
    from stratum.server.services.objects import ObjectService

    results = ObjectService(store).apply_documents(
        [*demo_manifests(), *extra], ctx=system_context("stratum up")
    )
    created = sum(r.action == "created" for r in results)
    return DemoSeeded(created=created, reused=len(results) - created)


def run(
    settings: ServerSettings,
    *,
    admin_token_file: Path | None = None,
    demo: bool = False,
    log_level: str = "info",
    announce: Callable[[Startup], None] = lambda _: None,
    seed: Sequence[dict[str, Any]] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Start the server and serve until interrupted (`progress` hears each step before it
    starts, for a status line). Raises PortInUse, an ApiError when the
    store cannot be opened, or RuntimeError when tracing is asked for without its SDK."""
    import uvicorn

    from stratum.portal.app import mount as mount_portal
    from stratum.server.app import create_app
    from stratum.server.services.tokens import bootstrap_admin

    progress("checking the port")
    check_port(settings.host, settings.port)
    settings = with_default_keys(settings)
    progress("opening the store (migrations on the first start)")
    store = ObjectStore.open(settings.database_url, make_clock(settings.simulation_speed))
    if demo:
        progress("seeding the demo fleet and the catalog")
    seeded = seed_demo(store, seed) if demo else None
    progress("starting the API server and the controllers")
    app = create_app(settings, store)
    mount_portal(app)  # the portal at / (the API stays under /apis)
    admin_token = bootstrap_admin(app.state.tokens, admin_token_file)
    announce(
        Startup(
            base_url=f"{'https' if settings.tls_cert else 'http'}://{settings.host}:{settings.port}",
            store=store.engine.url.render_as_string(hide_password=True),
            admin_token=admin_token,
            admin_token_file=admin_token_file
            if admin_token_file is not None and admin_token_file.exists()
            else None,
            demo=seeded,
            speed=settings.simulation_speed,
        )
    )
    # log_config=None: uvicorn's records go through the handler the CLI set up.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        access_log=False,
        log_config=None,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )
    _graceful_server(config, app.state.notifier).run()


def _graceful_server(config: Any, notifier: ChangeNotifier) -> Any:
    """A uvicorn.Server that also ends watch streams when asked to stop, so that shutdown
    does not wait for clients that would stream forever."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            notifier.close()
            super().handle_exit(sig, frame)

    return GracefulServer(config)
