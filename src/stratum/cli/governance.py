"""`login`, `whoami`, `token`, `report sovereignty` and `audit verify`: identity and proof."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stratum.cli.output import (
    EXIT_REFUSED,
    EXIT_USAGE,
    console,
    fail,
    fail_api,
    print_json,
    print_table,
)
from stratum.core.errors import ApiError

token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
report_app = typer.Typer(help="Compliance reports.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
admin_app = typer.Typer(
    help="Operator commands that act on the store directly, with no server and no token.",
    no_args_is_help=True,
)
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("whoami")(whoami)
    token_app.command("create")(token_create)
    token_app.command("list")(token_list)
    token_app.command("revoke")(token_revoke)
    app.add_typer(token_app, name="token")
    report_app.command("sovereignty")(report_sovereignty)
    app.add_typer(report_app, name="report")
    audit_app.command("verify")(audit_verify)
    app.add_typer(audit_app, name="audit")
    admin_app.command("recover")(admin_recover)
    app.add_typer(admin_app, name="admin")


def _client(server: str | None = None, token: str | None = None) -> Any:
    from stratum.client.config import load_config
    from stratum.client.http import StratumClient

    try:
        config = load_config()
    except ApiError as err:
        fail_api(err)
    return StratumClient(
        server or config.server,
        token or config.token,
        on_warning=lambda w: console(stderr=True).print(f"Warning: {w}", markup=False),
    )


def _roles(who: dict[str, Any]) -> str:
    roles = [who["platformRole"]] if who.get("platformRole") else []
    roles += [f"{r} of {t}" for t, r in sorted((who.get("tenantRoles") or {}).items())]
    return ", ".join(roles) or "no roles yet"


def login(
    server: Annotated[
        str | None,
        typer.Option("--server", help="Server URL (default: STRATUM_SERVER or the config file)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="The token; without it, it is read from standard input."),
    ] = None,
) -> None:
    """Check a token against the server, then keep server and token in the config file."""
    from stratum.client.config import load_config, write_config_value

    if token is None:
        if sys.stdin.isatty():
            token = typer.prompt("Token", hide_input=True)
        else:
            token = sys.stdin.readline()
    token = (token or "").strip()
    if not token:
        fail("no token given: pass --token or type it in", code=EXIT_USAGE)
    server = server or load_config().server
    with _client(server, token) as client:
        try:
            who = client.whoami()
        except ApiError as err:
            fail_api(err, hint="nothing was saved")
    write_config_value("server", server)
    path = write_config_value("token", token)
    console().print(
        f"Logged in to {server} as {who['subject']} ({_roles(who)}); saved in {path}", markup=False
    )


def whoami() -> None:
    """Who the configured token speaks for, and its roles."""
    with _client() as client:
        try:
            who = client.whoami()
        except ApiError as err:
            fail_api(err)
    console().print(f"{who['subject']} ({_roles(who)}), token {who.get('tokenId')}", markup=False)


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if not match:
        fail(
            f"--ttl: expected a number and a unit (s, m, h, d, w), e.g. 30d; got {text!r}",
            code=EXIT_USAGE,
        )
    return int(match.group(1)) * _SECONDS[match.group(2)]


def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci-pipeline.")],
    subject: Annotated[
        str | None,
        typer.Option(help="Whom it speaks for (default: you); a user as listed in Tenant members."),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="platform-admin, platform-viewer or agent; with --tenant: tenant-admin, member "
            "or viewer."
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="Bind the token to this tenant.")] = None,
    service: Annotated[
        bool,
        typer.Option(
            "--service", help="A service token (agents, automation): subject service:NAME."
        ),
    ] = False,
    ttl: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 12h, 30d (default: none).")
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Create a token. Its value is printed once, on standard output; keep it safe."""
    expires = _seconds(ttl)
    with _client() as client:
        try:
            made = client.create_token(
                name,
                subject=subject,
                role=role,
                tenant=tenant,
                service=service,
                expires_in_seconds=expires,
            )
        except ApiError as err:
            fail_api(err)
    if output == "json":
        print_json(made)
        return
    console(stderr=True).print(
        f"token {made['id']} for {made['subject']}"
        + (
            f" ({made['role']}{' of ' + made['tenant'] if made.get('tenant') else ''})"
            if made.get("role")
            else ""
        )
        + (f", expires {made['expiresAt']}" if made.get("expiresAt") else "")
        + ": shown once, now",
        markup=False,
    )
    sys.stdout.write(made["token"] + "\n")


def token_list(
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """Tokens you may manage (all, for platform admins). Secrets are never shown."""
    with _client() as client:
        try:
            items = client.list_tokens()
        except ApiError as err:
            fail_api(err)
    if output == "json":
        print_json(items)
        return
    print_table(
        ["ID", "NAME", "SUBJECT", "ROLE", "TENANT", "STATE", "EXPIRES", "CREATED-BY", "ISSUER"],
        [
            [
                t["id"],
                t["name"],
                t["subject"],
                t.get("role") or "-",
                t.get("tenant") or "-",
                t["state"],
                t.get("expiresAt") or "never",
                t["createdBy"],
                t.get("issuerTokenId") or "-",
            ]
            for t in items
        ],
    )


def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id.")],
    with_issued: Annotated[
        bool,
        typer.Option(
            "--with-issued", help="Also revoke every active token this one made, and theirs."
        ),
    ] = False,
) -> None:
    """Revoke a token: it stops working at once, for good."""
    with _client() as client:
        try:
            result = client.revoke_token(token_id, with_issued=with_issued)
        except ApiError as err:
            fail_api(err)
    also = result.get("alsoRevoked") or []
    console().print(
        f"token {token_id} revoked"
        + (f", and {len(also)} it issued: {', '.join(also)}" if also else ""),
        markup=False,
    )


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return "-" if value in (None, "") else str(value)


def report_sovereignty(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="Only work running at or after this time (ISO 8601)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Only work that began at or before this time (ISO 8601)."),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table, csv or json.")] = "table",
) -> None:
    """Every workload: where it runs or ran, under which law, since when, and the policies
    that allowed it there."""
    from stratum.core.reports import BRIEF_COLUMNS, write_csv

    if output not in ("table", "csv", "json"):
        fail(f"--output: expected table, csv or json, got {output!r}", code=EXIT_USAGE)
    with _client() as client:
        try:
            rows = client.sovereignty_report(tenant=tenant, start=start, end=end)
        except ApiError as err:
            fail_api(err)
    if output == "json":
        print_json(rows)
    elif output == "csv":
        write_csv(sys.stdout, rows, BRIEF_COLUMNS)
    elif not rows:
        console(stderr=True).print("No workloads found.", markup=False)
    else:
        print_table(
            [c.upper() if c != "dataClassification" else "DATA" for c in BRIEF_COLUMNS],
            [[_cell(row.get(c)) for c in BRIEF_COLUMNS] for row in rows],
        )


def audit_verify(
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> None:
    """Check the audit log's hash chain: name every record edited, removed or out of place.
    Exits 1 when the chain is broken."""
    with _client() as client:
        try:
            result = client.verify_audit()
        except ApiError as err:
            fail_api(err)
    if output == "json":
        print_json(result)
    elif result["ok"]:
        anchored = result.get("anchoredSequence")
        console().print(
            f"audit log intact: {result['records']} records, head {result['head'][:16]}"
            + (f", anchored at record {anchored}" if anchored else ""),
            markup=False,
        )
    else:
        out = console(stderr=True)
        out.print(
            f"audit log BROKEN: {len(result['problems'])} problem(s) in "
            f"{result['records']} records ({result['expected']} written)",
            markup=False,
        )
        for problem in result["problems"]:
            out.print(f"  record {problem['sequence']}: {problem['message']}", markup=False)
    if output != "json":
        for note in result.get("notes") or []:
            console(stderr=True).print(f"Note: {note}", markup=False)
    if not result["ok"]:
        raise typer.Exit(EXIT_REFUSED)


def admin_recover(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="STRATUM_DATABASE_URL",
            help="The store, as for `stratum serve` (default: the SQLite file in $STRATUM_HOME).",
        ),
    ] = None,
    subject: Annotated[str, typer.Option(help="Whom the new admin token speaks for.")] = "admin",
    name: Annotated[str, typer.Option(help="The token's name.")] = "recovered-admin",
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            help="Write the token here (mode 0600, never over an existing file) instead of "
            "standard output.",
        ),
    ] = None,
    audit_key_file: Annotated[
        Path | None,
        typer.Option(
            "--audit-key-file",
            envvar="STRATUM_AUDIT_KEY_FILE",
            help="The server's audit keys, so that the audit record of the recovery is "
            "signed like the rest (default: $STRATUM_AUDIT_KEYS, else "
            "$STRATUM_HOME/audit.key if it exists).",
        ),
    ] = None,
) -> None:
    """Make a new platform-admin token straight in the store, when every admin token is
    lost or revoked. It needs the database itself (and the audit key file), which no API
    caller has; the audit log names the operating-system user who ran it. Works while the
    server runs."""
    import getpass
    import os

    from stratum.core.errors import ApiError
    from stratum.server.audit_trail import (
        DEFAULT_AUDIT_KEY_FILE,
        ENV_AUDIT_KEYS,
        AuditTrail,
        load_audit_keys,
    )
    from stratum.server.services.tokens import TokenService, recover_admin
    from stratum.store.database import default_database_url, stratum_home
    from stratum.store.objects import ObjectStore

    if audit_key_file is None and not (os.environ.get(ENV_AUDIT_KEYS) or "").strip():
        default = stratum_home() / DEFAULT_AUDIT_KEY_FILE
        audit_key_file = default if default.exists() else None
    if token_file is not None and token_file.exists():
        fail(f"--token-file: {token_file} exists; name a new file", code=EXIT_USAGE)
    try:
        keys = load_audit_keys(key_file=audit_key_file, keys=None)
        store = ObjectStore.open(database_url or default_database_url())
    except ApiError as err:
        fail_api(err)
    try:
        AuditTrail.configure(store, keys, None)
        made = recover_admin(
            TokenService(store), subject=subject, name=name, operator=getpass.getuser()
        )
    except ApiError as err:
        fail_api(err)
    finally:
        store.close()
    console(stderr=True).print(
        f"token {made.record.id}: a new platform-admin token for {subject}, made in the store "
        "(audited); shown once",
        markup=False,
    )
    if token_file is None:
        sys.stdout.write(made.value + "\n")
        return
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(made.value + "\n")
    console(stderr=True).print(f"written to {token_file} (mode 0600)", markup=False)
