"""Token service: create (shown once), list, revoke, authenticate, and the first admin token."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stratum.core import access
from stratum.core.access import (
    BOOTSTRAP_SUBJECT,
    NODE_PREFIX,
    NODE_ROLE,
    PLATFORM_ROLES,
    TENANT_ROLES,
    Principal,
    SubjectRoles,
)
from stratum.core.audit import digest
from stratum.core.errors import Cause, Conflict, Invalid, NotFound, Unauthorized
from stratum.core.tokens import NewToken, hash_secret, new_token, parse_token, secret_matches
from stratum.store import audit
from stratum.store.objects import ObjectStore, Transaction
from stratum.store.tokens import (
    TokenRecord,
    count_tokens,
    find_token,
    insert_token,
    list_tokens,
    lock_tokens,
    platform_tokens,
    revoke_token,
    tokens_of,
)

_CACHE_SIZE = 1024
# How deep an issuer chain is followed for the audit log: deeper links are cut.
_CHAIN_DEPTH = 8


@dataclass(frozen=True, slots=True)
class CreatedToken:
    record: TokenRecord
    value: str


def token_wire(record: TokenRecord, now: datetime, value: str | None = None) -> dict[str, Any]:
    """A token as the API shows it: never its hash; its value only when just created."""
    state = "active"
    if record.revoked_at is not None:
        state = "revoked"
    elif record.expires_at is not None and record.expires_at <= now:
        state = "expired"
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "subject": record.subject,
        "kind": record.kind,
        "role": record.role,
        "tenant": record.tenant,
        "state": state,
        "createdAt": _stamp(record.created_at),
        "createdBy": record.created_by,
        "issuerTokenId": record.issuer_token_id,
        "expiresAt": _stamp(record.expires_at),
        "revokedAt": _stamp(record.revoked_at),
    }
    if value is not None:
        body["token"] = value
    return body


def _stamp(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def is_active(record: TokenRecord, now: datetime) -> bool:
    return record.revoked_at is None and (record.expires_at is None or record.expires_at > now)


def _issuers(tx: Transaction, record: TokenRecord) -> tuple[tuple[str, str], ...]:
    """(subject, token id) of who made this token, who made theirs, ..., nearest first."""
    chain: list[tuple[str, str]] = []
    cursor = record.issuer_token_id
    while cursor is not None and len(chain) < _CHAIN_DEPTH:
        issuer = find_token(tx, cursor)
        if issuer is None:
            break
        chain.append((issuer.subject, issuer.id))
        cursor = issuer.issuer_token_id
    return tuple(chain)


PRINCIPAL_TTL_SECONDS = 1.0


class TokenService:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        # sha256(token) -> token id, for tokens whose secret has been checked once: scrypt
        # is deliberately slow. Revocation and expiry are still read on every request.
        self._verified: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        # sha256(token) -> (principal, monotonic deadline): a principal is reused for at
        # most PRINCIPAL_TTL_SECONDS, and forgotten at once when this server writes anything
        # (a revocation, a Tenant's members) — other replicas see such a change within the TTL.
        self._principals: dict[str, tuple[Principal, float]] = {}
        # token id -> (why it no longer works or None, monotonic deadline): what open watch
        # streams ask every second or so, shared so that many streams cost one read.
        self._ended: dict[str, tuple[str | None, float]] = {}

    def forget(self) -> None:
        """Drop cached principals: called on every write this server makes."""
        with self._lock:
            self._principals.clear()
            self._ended.clear()

    def ended(self, token_id: str | None) -> str | None:
        """Why a token no longer works (revoked, expired, gone), or None while it does.
        Long-lived requests (watch streams) ask this as they go: within about
        PRINCIPAL_TTL_SECONDS of a revocation on any replica, at once on this one."""
        if token_id is None:  # the server itself
            return None
        with self._lock:
            cached = self._ended.get(token_id)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        with self.store.read() as tx:
            record = find_token(tx, token_id)
            now = tx.clock.now()
        why: str | None = None
        if record is None:
            why = f"token {token_id} no longer exists"
        elif record.revoked_at is not None:
            why = f"token {token_id} was revoked"
        elif record.expires_at is not None and record.expires_at <= now:
            why = f"token {token_id} expired at {_stamp(record.expires_at)}"
        with self._lock:
            if len(self._ended) >= _CACHE_SIZE:
                self._ended.clear()
            self._ended[token_id] = (why, time.monotonic() + PRINCIPAL_TTL_SECONDS)
        return why

    # -- authentication ----------------------------------------------------------------
    def cached(self, header: str | None) -> Principal | None:
        """The principal `authenticate` would return, if it is cached and fresh; else None
        (then call `authenticate`, which may read the store). Never touches the store, so
        the server answers from it on the event loop, with no hop to a worker thread."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self._lock:
            cached = self._principals.get(_cache_key(value.strip()))
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        return None

    def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized(
                "authentication required: send 'Authorization: Bearer TOKEN' "
                "(stratum login, or STRATUM_TOKEN)"
            )
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("expected 'Authorization: Bearer TOKEN'")
        value = value.strip()
        parsed = parse_token(value)
        if parsed is None:
            raise Unauthorized("the token is not a Stratum token")
        token_id, secret = parsed
        key = _cache_key(value)
        with self._lock:
            cached = self._principals.get(key)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        with self.store.read() as tx:
            record = find_token(tx, token_id)
            now = tx.clock.now()
            if record is None:
                raise Unauthorized("the token is not valid")
            with self._lock:
                known = self._verified.get(key) == token_id
            if not known:
                if not secret_matches(secret, record.salt, record.secret_hash):
                    raise Unauthorized("the token is not valid")
                with self._lock:
                    self._verified[key] = token_id
                    while len(self._verified) > _CACHE_SIZE:
                        self._verified.popitem(last=False)
            if record.revoked_at is not None:
                raise Unauthorized(f"token {record.id} was revoked")
            if record.expires_at is not None and record.expires_at <= now:
                raise Unauthorized(f"token {record.id} expired at {_stamp(record.expires_at)}")
            # A node token holds no tenant role: its heartbeats skip reading every Tenant.
            tenants = [] if record.role == NODE_ROLE else tx.list("Tenant").items
            issued_by = _issuers(tx, record)
        roles = access.tenant_roles_of(record.subject, tenants)
        platform_role = None
        if record.tenant is not None:
            if record.role in TENANT_ROLES and any(
                t["metadata"]["name"] == record.tenant for t in tenants
            ):
                roles[record.tenant] = str(record.role)
        elif record.role in PLATFORM_ROLES or record.role == NODE_ROLE:
            platform_role = record.role
        principal = Principal(
            subject=record.subject,
            platform_role=platform_role,
            tenant_roles=roles,
            token_id=record.id,
            issued_by=issued_by,
        )
        ttl = PRINCIPAL_TTL_SECONDS
        if record.expires_at is not None:
            ttl = min(ttl, (record.expires_at - now).total_seconds())
        with self._lock:
            if len(self._principals) >= _CACHE_SIZE:
                self._principals.clear()
            self._principals[key] = (principal, time.monotonic() + ttl)
        return principal

    # -- lifecycle ---------------------------------------------------------------------
    def create(
        self,
        principal: Principal,
        *,
        name: str,
        subject: str | None = None,
        role: str | None = None,
        tenant: str | None = None,
        service: bool = False,
        expires_in_seconds: int | None = None,
        source: str | None = None,
    ) -> CreatedToken:
        if not name or len(name) > 253:
            raise _invalid("name", "expected 1..253 characters")
        if service:
            base = subject or name
            subject = base if base.startswith("service:") else f"service:{base}"
        subject = subject or principal.subject
        if tenant is not None and role is None:
            role = "member"
        if tenant is not None and role not in TENANT_ROLES:
            raise _invalid(
                "role",
                f"a token bound to a tenant takes one of {', '.join(TENANT_ROLES)}, got {role!r}",
            )
        if tenant is None and role is not None and role not in PLATFORM_ROLES:
            raise _invalid(
                "role",
                f"without a tenant the role must be one of "
                f"{', '.join(PLATFORM_ROLES)}, got {role!r} (tenant roles "
                "come from the Tenant's members, or bind with --tenant)",
            )
        if expires_in_seconds is not None and expires_in_seconds <= 0:
            raise _invalid("expiresInSeconds", f"expected > 0, got {expires_in_seconds}")
        made = new_token()
        with self.store.write() as tx:
            lock_tokens(tx)
            now = tx.clock.now()
            issuer = self._issuer(tx, principal, now)
            access.check_token_grant(
                principal,
                subject=subject,
                role=role,
                tenant=tenant,
                holds=_holds(tx, subject, now),
            )
            if tenant is not None and tx.find("Tenant", "", tenant) is None:
                raise access.namespace_missing(tenant)
            expires_at = now + timedelta(seconds=expires_in_seconds) if expires_in_seconds else None
            # A token never outlives the one that made it.
            if issuer is not None and issuer.expires_at is not None:
                expires_at = min(expires_at or issuer.expires_at, issuer.expires_at)
            record = TokenRecord(
                id=made.id,
                name=name,
                subject=subject,
                kind="service" if service else "user",
                role=role,
                tenant=tenant,
                salt=made.salt,
                secret_hash=made.secret_hash,
                created_at=now,
                created_by=principal.subject,
                expires_at=expires_at,
                revoked_at=None,
                issuer_token_id=None if issuer is None else issuer.id,
            )
            insert_token(tx, record)
            audit.append(
                tx,
                actor=principal,
                action="create",
                object_ref={"kind": "Token", "name": record.id},
                source=source,
                before=None,
                after=digest(_public(record)),
            )
        return CreatedToken(record, made.value)

    @staticmethod
    def _issuer(tx: Transaction, principal: Principal, now: datetime) -> TokenRecord | None:
        """The caller's own token, checked again inside the write: one revoked or expired
        a moment ago issues nothing."""
        if principal.token_id is None:
            return None
        issuer = find_token(tx, principal.token_id)
        if issuer is None or not is_active(issuer, now):
            raise Unauthorized(f"token {principal.token_id} is no longer valid")
        return issuer

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            now = tx.clock.now()
            return [token_wire(r, now) for r in list_tokens(tx) if _manages(principal, r)]

    def revoke(
        self,
        principal: Principal,
        token_id: str,
        *,
        source: str | None = None,
        with_issued: bool = False,
    ) -> dict[str, Any]:
        """Revoke a token; `with_issued`: also every active token it made, and theirs (whoever
        may revoke a token may revoke what exists only by it: a stolen token's offspring go
        with it). Never the last active platform-admin token."""
        with self.store.write() as tx:
            lock_tokens(tx)
            record = find_token(tx, token_id)
            if record is None or not _manages(principal, record):
                raise NotFound(f'token "{token_id}" not found')
            now = tx.clock.now()
            issued = _issued_by(tx, record.id, now) if with_issued else []
            going = [record, *issued]
            _keep_an_admin(tx, going, now)
            for target in going:
                if target.revoked_at is not None:
                    continue
                revoke_token(tx, target.id, now)
                after = find_token(tx, target.id)
                assert after is not None
                audit.append(
                    tx,
                    actor=principal,
                    action="delete",
                    object_ref={"kind": "Token", "name": target.id},
                    source=source,
                    before=digest(_public(target)),
                    after=digest(_public(after)),
                )
            revoked = find_token(tx, record.id)
            assert revoked is not None
            result = token_wire(revoked, now)
            if with_issued:
                result["alsoRevoked"] = [t.id for t in issued]
        self.forget()  # after the commit: the revoked token is refused from now on
        return result

    def issue_node_token(self, node: str, *, cluster: str, source: str | None) -> CreatedToken:
        """A token bound to one Node, for the `stratum agent` that just joined with its
        Cluster's bootstrap token; the node's earlier tokens are revoked with it (a host
        re-joins; whoever held its old token holds nothing now). Audited."""
        made = new_token()
        subject = f"{NODE_PREFIX}{node}"
        actor = f"system:agent-join ({cluster})"
        with self.store.write() as tx:
            lock_tokens(tx)
            now = tx.clock.now()
            for old in tokens_of(tx, subject):
                if old.role == NODE_ROLE and is_active(old, now):
                    revoke_token(tx, old.id, now)
            record = TokenRecord(
                id=made.id,
                name=f"node-{node}"[:253],
                subject=subject,
                kind="service",
                role=NODE_ROLE,
                tenant=None,
                salt=made.salt,
                secret_hash=made.secret_hash,
                created_at=now,
                created_by=actor,
                expires_at=None,
                revoked_at=None,
            )
            insert_token(tx, record)
            audit.append(
                tx,
                actor=actor,
                action="create",
                object_ref={"kind": "Token", "name": record.id},
                source=source,
                before=None,
                after=digest(_public(record)),
            )
        self.forget()
        # Its secret was made here a moment ago: the first report need not run scrypt
        # again (1,000 hosts joining at once would queue behind it).
        with self._lock:
            self._verified[_cache_key(made.value)] = record.id
        return CreatedToken(record, made.value)

    def bootstrap(self, value: str | None = None) -> CreatedToken | None:
        """The first platform-admin token, made only while the store holds no token at all.

        `value` adopts a token made beforehand (automation provisions it); otherwise a new
        one is made."""
        made = new_token()
        if value is not None:
            parsed = parse_token(value)
            if parsed is None:
                raise Invalid(
                    "the admin token given is not a Stratum token (stt_<16 hex>_<43 characters>)"
                )
            token_id, secret = parsed
            salt = made.salt
            made = NewToken(
                id=token_id, value=value.strip(), salt=salt, secret_hash=hash_secret(secret, salt)
            )
        with self.store.write() as tx:
            if count_tokens(tx) > 0:
                return None
            record = TokenRecord(
                id=made.id,
                name="bootstrap-admin",
                subject=BOOTSTRAP_SUBJECT,
                kind="user",
                role="platform-admin",
                tenant=None,
                salt=made.salt,
                secret_hash=made.secret_hash,
                created_at=tx.clock.now(),
                created_by="system:bootstrap",
                expires_at=None,
                revoked_at=None,
            )
            insert_token(tx, record)
        return CreatedToken(record, made.value)


RECOVERY_ACTOR = "system:recovery"


def recover_admin(tokens: TokenService, *, subject: str, name: str, operator: str) -> CreatedToken:
    """A new platform-admin token made straight in the store, for when every admin token
    is lost or revoked (`stratum admin recover`). Needs what no API caller has: the
    database itself. The audit log names the operating-system user who ran it."""
    if not subject or len(subject) > 253:
        raise _invalid("subject", "expected 1..253 characters")
    made = new_token()
    with tokens.store.write() as tx:
        lock_tokens(tx)
        record = TokenRecord(
            id=made.id,
            name=name,
            subject=subject,
            kind="user",
            role="platform-admin",
            tenant=None,
            salt=made.salt,
            secret_hash=made.secret_hash,
            created_at=tx.clock.now(),
            created_by=RECOVERY_ACTOR,
            expires_at=None,
            revoked_at=None,
        )
        insert_token(tx, record)
        audit.append(
            tx,
            actor=f"{RECOVERY_ACTOR} (run by {operator})",
            action="create",
            object_ref={"kind": "Token", "name": record.id},
            source=None,
            before=None,
            after=digest(_public(record)),
        )
    tokens.forget()
    return CreatedToken(record, made.value)


def _issued_by(tx: Transaction, token_id: str, now: datetime) -> list[TokenRecord]:
    """Every active token made by `token_id`, by those, and so on: oldest first."""
    children: dict[str, list[TokenRecord]] = {}
    for t in list_tokens(tx):
        if t.issuer_token_id is not None:
            children.setdefault(t.issuer_token_id, []).append(t)
    found: list[TokenRecord] = []
    frontier = [token_id]
    while frontier:
        nxt = [c for parent in frontier for c in children.get(parent, [])]
        found += [c for c in nxt if is_active(c, now)]
        frontier = [c.id for c in nxt]  # a revoked child's offspring may still be active
    return found


def _keep_an_admin(tx: Transaction, going: list[TokenRecord], now: datetime) -> None:
    """Refuse a revocation that would leave no active platform-admin token."""
    ids = {t.id for t in going}
    admins = [t for t in platform_tokens(tx, "platform-admin") if is_active(t, now)]
    if not admins or any(t.id not in ids for t in admins):
        return
    last = next(t for t in going if t.id in {a.id for a in admins})
    raise Conflict(
        f"token {last.id} is the last active platform-admin token: revoking it would leave "
        "nobody able to administer the platform. Create another (stratum token create NAME "
        "--role platform-admin) and revoke this one with it; a lost admin token is "
        "recovered with `stratum admin recover`"
    )


def _manages(principal: Principal, record: TokenRecord) -> bool:
    return access.may_manage_token(
        principal,
        subject=record.subject,
        tenant=record.tenant,
        role=record.role,
        created_by=record.created_by,
    )


def _holds(tx: Transaction, subject: str, now: datetime) -> SubjectRoles:
    """What `subject` holds now: its roles from Tenant members and from active tokens."""
    active = [t for t in tokens_of(tx, subject) if is_active(t, now)]
    return SubjectRoles(
        member_roles=access.tenant_roles_of(subject, tx.list("Tenant").items),
        token_tenants=frozenset(t.tenant for t in active if t.tenant is not None),
        platform=any(access.is_platform_token(role=t.role, tenant=t.tenant) for t in active),
    )


def _cache_key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _public(record: TokenRecord) -> dict[str, Any]:
    return {
        "kind": "Token",
        "metadata": {"name": record.id},
        "spec": {
            "subject": record.subject,
            "role": record.role,
            "tenant": record.tenant,
            "expiresAt": _stamp(record.expires_at),
            "revokedAt": _stamp(record.revoked_at),
        },
    }


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", causes=[Cause(field, message)])


def bootstrap_admin(tokens: TokenService, token_file: Path | None) -> str | None:
    """What `stratum serve` and `stratum up` do at start: on a store with no token, make the
    first platform-admin token (or adopt the one already in `token_file`) and write it to
    `token_file` (mode 0600). Returns the token when it must be shown, else None."""
    given = None
    if token_file is not None and token_file.exists():
        given = token_file.read_text().strip() or None
    made = tokens.bootstrap(given)
    if made is None or token_file is None:
        return None if made is None else made.value
    if given is None:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(made.value + "\n")
    os.chmod(token_file, 0o600)
    return None
