"""`stratum serve`: run the API server on an SQLite file or a PostgreSQL database."""

from __future__ import annotations

from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stratum.cli.output import fail

if TYPE_CHECKING:
    from stratum.server.watch import ChangeNotifier


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8080,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="STRATUM_DATABASE_URL",
            help="SQLAlchemy URL of the store, e.g. postgresql://host/db. "
            "Default: an SQLite file in $STRATUM_HOME (or the XDG data directory).",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body accepted (413 above it).", min=1024)
    ] = 16 * 1024 * 1024,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    controllers: Annotated[
        bool,
        typer.Option(
            "--controllers/--no-controllers",
            help="Run the reconcilers and the simulated fleet in this process (one replica at a "
            "time acts, by a lease in the store).",
        ),
    ] = True,
    speed: Annotated[
        float,
        typer.Option(
            help="How much faster than real time the simulated fleet's clock runs.",
            min=0.001,
            max=1_000_000,
        ),
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed for simulated telemetry and tie-breaks.")] = 0,
    lease_seconds: Annotated[
        float,
        typer.Option(
            help="How long the controller lease lasts unrenewed: after a replica dies, another "
            "takes over within this time.",
            min=1.0,
            max=600.0,
        ),
    ] = 15.0,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file",
            help="On a store with no token yet, write the first admin token here (mode 0600) "
            "instead of printing it; if the file already holds a token, adopt that one.",
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            help="text, or json: one JSON object per line, with the object (kind, namespace, "
            "name, uid) a record is about."
        ),
    ] = "text",
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            "--otlp-endpoint",
            envvar="STRATUM_OTLP_ENDPOINT",
            help="Send OpenTelemetry traces of API requests and reconcile passes to this "
            "OTLP/HTTP endpoint (needs `pip install stratum[otel]`). Default: no tracing.",
        ),
    ] = None,
    audit_key_file: Annotated[
        Path | None,
        typer.Option(
            "--audit-key-file",
            envvar="STRATUM_AUDIT_KEY_FILE",
            help="Keys that sign the audit chain (HMAC), newest first, one a line; mode 0600; "
            "apart from the secret keys, and never retired. Default: $STRATUM_AUDIT_KEYS, "
            "else $STRATUM_HOME/audit.key, which a server on an SQLite store creates.",
        ),
    ] = None,
    audit_anchor_file: Annotated[
        Path | None,
        typer.Option(
            "--audit-anchor-file",
            envvar="STRATUM_AUDIT_ANCHOR_FILE",
            help="Where the audit log's signed head is kept, outside the store, so that "
            "`stratum audit verify` detects deleted newest records (each replica keeps its "
            "own). Default: $STRATUM_HOME/audit-anchor.json. Needs a secret key.",
        ),
    ] = None,
    secret_key_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-key-file",
            envvar="STRATUM_SECRET_KEY_FILE",
            help="Keys that encrypt stored credentials, newest first, one a line; the file must "
            "be mode 0600. Default: $STRATUM_SECRET_KEYS, else $STRATUM_HOME/secret.key, "
            "which a server on an SQLite store creates when it is missing.",
        ),
    ] = None,
) -> None:
    """Run the Stratum API server until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    import uvicorn

    from stratum.core.errors import ApiError
    from stratum.observability.logs import LOG_FORMATS, setup_logging
    from stratum.server.app import create_app
    from stratum.server.audit_trail import (
        DEFAULT_ANCHOR_FILE,
        DEFAULT_AUDIT_KEY_FILE,
        ENV_AUDIT_KEYS,
    )
    from stratum.server.services.tokens import bootstrap_admin
    from stratum.server.settings import ServerSettings
    from stratum.store.database import default_database_url, stratum_home

    if log_format not in LOG_FORMATS:
        fail(f"--log-format: expected one of {', '.join(LOG_FORMATS)}, got {log_format!r}", code=2)
    url = database_url or default_database_url()
    setup_logging(level=log_level, fmt=log_format)
    key_file = secret_key_file or _default_key_file(url)
    audit_key = audit_key_file or _default_key_file(
        url,
        env=ENV_AUDIT_KEYS,
        name=DEFAULT_AUDIT_KEY_FILE,
        what="key that signs the audit log",
        backup="back it up and never retire it; without it the log cannot be verified",
    )
    settings = ServerSettings(
        database_url=url,
        host=host,
        port=port,
        max_body_bytes=max_body_bytes,
        controllers=controllers,
        simulation_speed=speed,
        seed=seed,
        lease_seconds=lease_seconds,
        otlp_endpoint=otlp_endpoint,
        secret_key_file=key_file,
        audit_key_file=audit_key,
        audit_anchor_file=audit_anchor_file or stratum_home() / DEFAULT_ANCHOR_FILE,
    )
    try:
        app = create_app(settings)
        admin_token = bootstrap_admin(app.state.tokens, admin_token_file)
    except ApiError as err:
        fail(err.message, code=3)
    except RuntimeError as err:  # tracing asked for without the OpenTelemetry SDK
        fail(str(err), code=2)
    if admin_token is not None:
        typer.echo(
            "The store had no token: this is the first platform-admin token. It is "
            f"shown once; keep it safe.\n\n    {admin_token}\n\n"
            "Use it with `stratum login` or STRATUM_TOKEN.",
            err=True,
        )
    elif admin_token_file is not None and admin_token_file.exists():
        typer.echo(f"Admin token in {admin_token_file} (if the store was new).", err=True)
    # log_config=None: uvicorn's records go through the handler set up above.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        access_log=False,
        log_config=None,
    )
    server = _graceful_server(config, app.state.notifier)
    shown = app.state.store.engine.url.render_as_string(hide_password=True)
    typer.echo(
        f"Stratum API on http://{host}:{port} (store: {shown}); "
        f"OpenAPI at http://{host}:{port}/docs",
        err=True,
    )
    server.run()


def _default_key_file(
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
    import logging
    import os

    from stratum.server.secrets import DEFAULT_KEY_FILE, ENV_KEYS, create_key_file
    from stratum.store.database import stratum_home

    env = env or ENV_KEYS
    if (os.environ.get(env) or "").strip():
        return None
    path = stratum_home() / (name or DEFAULT_KEY_FILE)
    if path.exists():
        return path
    log = logging.getLogger("stratum.server")
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


def _graceful_server(config: Any, notifier: ChangeNotifier) -> Any:
    """A uvicorn.Server that also ends watch streams when asked to stop, so that shutdown
    does not wait for clients that would stream forever."""
    import uvicorn

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            notifier.close()
            super().handle_exit(sig, frame)

    return GracefulServer(config)
