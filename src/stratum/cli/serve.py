"""`stratum serve`: run the API server on an SQLite file or a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stratum.cli.output import fail

if TYPE_CHECKING:
    from stratum.server.main import Startup
    from stratum.server.settings import ServerSettings


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
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help="A backend this server runs (repeat for several); a Cluster names one in "
            "spec.backend. Default: simulated.",
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
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            exists=True,
            help="Serve HTTPS with this certificate (PEM, the chain after it); needs --tls-key. "
            "Agents trust it with `stratum agent --ca`.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", exists=True, help="The private key of --tls-cert (PEM)."),
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
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together: give both, or neither", code=2)
    settings = _settings(
        host=host,
        port=port,
        database_url=database_url,
        max_body_bytes=max_body_bytes,
        controllers=controllers,
        speed=speed,
        seed=seed,
        lease_seconds=lease_seconds,
        otlp_endpoint=otlp_endpoint,
        secret_key_file=secret_key_file,
        audit_key_file=audit_key_file,
        audit_anchor_file=audit_anchor_file,
        backends=backend,
        tls_cert=tls_cert,
        tls_key=tls_key,
        log_level=log_level,
        log_format=log_format,
    )
    start(settings, admin_token_file=admin_token_file, log_level=log_level, announce=announce)


def _settings(
    *,
    database_url: str | None,
    log_level: str,
    log_format: str,
    speed: float,
    backends: list[str] | None,
    **options: Any,
) -> ServerSettings:
    from stratum.observability.logs import LOG_FORMATS, setup_logging
    from stratum.server.settings import ServerSettings
    from stratum.store.database import default_database_url

    if log_format not in LOG_FORMATS:
        fail(f"--log-format: expected one of {', '.join(LOG_FORMATS)}, got {log_format!r}", code=2)
    setup_logging(level=log_level, fmt=log_format)
    return ServerSettings(
        database_url=database_url or default_database_url(),
        simulation_speed=speed,
        backends=tuple(backends or ("simulated",)),
        **options,
    )


def start(
    settings: ServerSettings,
    *,
    admin_token_file: Path | None,
    log_level: str,
    announce: Callable[[Startup], None],
    demo: bool = False,
    seed: Sequence[dict[str, Any]] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Run the server through its one entry point, turning its errors into exit codes."""
    from stratum.core.errors import ApiError
    from stratum.server.main import PortInUse, run

    try:
        run(
            settings,
            admin_token_file=admin_token_file,
            demo=demo,
            log_level=log_level,
            announce=announce,
            seed=seed,
            progress=progress,
        )
    except PortInUse as err:
        fail(str(err), code=2)
    except ApiError as err:
        fail(err.message, code=3)
    except RuntimeError as err:  # tracing asked for without the OpenTelemetry SDK
        fail(str(err), code=2)


def announce(startup: Startup) -> None:
    """serve's banner: where it listens, and the first admin token on stdout, apart from
    the log lines on stderr, so that it can be captured."""
    typer.echo(
        f"Stratum API on {startup.base_url} (store: {startup.store}); "
        f"OpenAPI at {startup.base_url}/docs",
        err=True,
    )
    if startup.admin_token is not None:
        typer.echo(
            "The store had no token: this is the first platform-admin token. It is shown "
            "once; keep it safe (lost? see `stratum token --help` and the README).",
            err=True,
        )
        typer.echo(startup.admin_token)
    elif startup.admin_token_file is not None:
        typer.echo(f"Admin token in {startup.admin_token_file} (if the store was new).", err=True)
