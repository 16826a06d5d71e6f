"""Secrets at rest: cluster credentials sealed with Fernet (AES-128-CBC + HMAC-SHA256) under
keys the operator gives the server, newest first, so that keys can be rotated.

A credential has three forms and each stays in its place:

    plaintext   what a manifest sends, and what a backend gets from `open_credentials`
    envelope    what the store holds: ``enc:v1:<fingerprint>:<Fernet token>``
    redacted    what the API returns: ``***:<fingerprint>``

The fingerprint is an HMAC of the plaintext keyed from the newest key when the value was
sealed: it tells two values apart without offering a hash of the secret to guess against,
and it changes when the keys rotate. A redacted value sent back (a GET edited and PUT) keeps
the stored secret; a plaintext equal to the stored one keeps its envelope, so applying the
same manifest twice changes nothing.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from stratum.core.errors import Cause, Invalid, Unavailable

ENVELOPE_PREFIX = "enc:v1:"
REDACTED_PREFIX = "***:"
# Where each kind keeps its secrets: a map of name -> value at this path of the wire object.
SECRET_PATHS: dict[str, tuple[str, ...]] = {"Cluster": ("spec", "credentials")}
NO_KEY_HINT = (
    "set STRATUM_SECRET_KEYS (comma-separated Fernet keys, newest first) or start "
    "the server with --secret-key-file"
)


class UnreadableSecret(Unavailable):
    """A stored secret that none of the configured keys opens: a missing key or an altered
    value. The server's configuration has to change, not the request."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """Fernet keys, newest first: seal with the newest, open with any."""

    keys: tuple[str, ...] = field(repr=False)
    _fernet: MultiFernet = field(init=False, repr=False, compare=False)
    _fingerprint_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        fernets = []
        for i, key in enumerate(self.keys):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError):
                # Never echo the key: say which one and what a key looks like.
                raise ValueError(
                    f"secret key #{i + 1} is not a Fernet key (expected 32 bytes in url-safe "
                    "base64, 44 characters; make one with `stratum secrets generate-key`)"
                ) from None
        object.__setattr__(self, "_fernet", MultiFernet(fernets))
        object.__setattr__(self, "_fingerprint_key", _derive(self.keys[0], b"fingerprint"))

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Keys separated by commas or newlines, newest first; '#' starts a comment line."""
        keys = [
            part.strip()
            for line in text.splitlines()
            if not line.strip().startswith("#")
            for part in line.split(",")
        ]
        return cls(tuple(k for k in keys if k))

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @property
    def key_id(self) -> str:
        """Names the newest key in messages without revealing it."""
        return _derive(self.keys[0], b"key-id").hex()[:12]

    def fingerprint(self, plaintext: str) -> str:
        return hmac.new(self._fingerprint_key, plaintext.encode(), hashlib.sha256).hexdigest()[:16]

    def seal(self, plaintext: str) -> str:
        token = self._fernet.encrypt(plaintext.encode()).decode()
        return f"{ENVELOPE_PREFIX}{self.fingerprint(plaintext)}:{token}"

    def open(self, envelope: str, *, what: str = "secret") -> str:
        """The plaintext of an envelope; UnreadableSecret when no key opens it."""
        if not is_envelope(envelope):
            raise UnreadableSecret(f"{what}: the stored value is not an encrypted envelope")
        token = envelope[len(ENVELOPE_PREFIX) :].partition(":")[2]
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except (InvalidToken, UnicodeDecodeError):
            raise UnreadableSecret(
                f"{what} cannot be decrypted with any of the {len(self.keys)} configured "
                "key(s): either the key it was sealed with is missing (add it to "
                "STRATUM_SECRET_KEYS or the key file, after the newest) or the stored value "
                "was altered"
            ) from None

    def reseal(self, envelope: str, *, what: str = "secret") -> str:
        """The same plaintext sealed under the newest key (with a fresh fingerprint)."""
        return self.seal(self.open(envelope, what=what))


def _derive(key: str, purpose: bytes) -> bytes:
    raw = base64.urlsafe_b64decode(key.encode())
    return hmac.new(raw, b"stratum/" + purpose, hashlib.sha256).digest()


def is_envelope(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(ENVELOPE_PREFIX)


def redacted(envelope: str) -> str:
    """`***:<fingerprint>` for a stored envelope (no key needed)."""
    fingerprint = envelope[len(ENVELOPE_PREFIX) :].partition(":")[0]
    return REDACTED_PREFIX + fingerprint


def _secrets_of(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    path = SECRET_PATHS.get(str(obj.get("kind")))
    if path is None:
        return None
    node: Any = obj
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node if isinstance(node, dict) and node else None


def _field(kind: str, name: str) -> str:
    return ".".join(SECRET_PATHS[kind]) + f".{name}"


def secret_count(obj: Mapping[str, Any]) -> int:
    return len(_secrets_of(obj) or {})


def redact(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API shows it: every secret as `***:<fingerprint>`. Objects without
    secrets come back as they are (no copy)."""
    values = _secrets_of(obj)
    if values is None:
        return obj
    shown = copy.deepcopy(obj)
    target = _secrets_of(shown)
    assert target is not None
    for name, value in values.items():
        target[name] = redacted(value) if is_envelope(value) else "***"
    return shown


def redact_all(objs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [redact(o) for o in objs]


def seal(
    keyring: Keyring | None, obj: dict[str, Any], existing: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Replace every plaintext secret of an incoming wire object by an envelope, in place.

    A value equal to the stored one (as plaintext, or as the redacted form the API showed)
    keeps the stored envelope. Envelopes are the server's own: a client may not send one.
    """
    values = _secrets_of(obj)
    if values is None:
        return obj
    kind = str(obj["kind"])
    stored = _secrets_of(existing) if existing is not None else None
    stored = stored or {}
    for name, value in values.items():
        where = _field(kind, name)
        old = stored.get(name)
        if is_envelope(value):
            raise _invalid(
                where,
                "an encrypted envelope is written by the server only: send the credential itself",
            )
        if isinstance(value, str) and value.startswith(REDACTED_PREFIX.rstrip(":")):
            if is_envelope(old) and value == redacted(old):
                values[name] = old
                continue
            raise _invalid(
                where,
                "this is the redacted form the API shows, and it does not "
                "match the stored value: send the credential itself",
            )
        if keyring is None:
            raise _invalid(
                where,
                "this server has no secret key, so it refuses to store "
                f"credentials it cannot encrypt: {NO_KEY_HINT}",
            )
        if is_envelope(old):
            try:
                if hmac.compare_digest(keyring.open(old).encode(), str(value).encode()):
                    values[name] = old
                    continue
            except UnreadableSecret:
                pass  # the new value replaces one no key can read
        values[name] = keyring.seal(str(value))
    return obj


def reseal(keyring: Keyring, obj: dict[str, Any], *, strict: bool = True) -> dict[str, Any] | None:
    """A copy of a stored object with every envelope sealed again under the newest key, or
    None if it holds no secret. Raises UnreadableSecret naming the object and the field;
    with `strict=False` (past versions in the change feed) a value no key opens loses its
    ciphertext instead and keeps only its fingerprint, so that it cannot block a rotation."""
    if _secrets_of(obj) is None:
        return None
    fresh = copy.deepcopy(obj)
    values = _secrets_of(fresh)
    assert values is not None
    for name, value in values.items():
        if not is_envelope(value):
            continue
        try:
            values[name] = keyring.reseal(value, what=_describe(obj, name))
        except UnreadableSecret:
            if strict:
                raise
            values[name] = ENVELOPE_PREFIX + redacted(value)[len(REDACTED_PREFIX) :] + ":"
    return fresh


def open_credentials(keyring: Keyring | None, obj: Mapping[str, Any]) -> dict[str, str]:
    """The plaintext secrets of a stored object, for a server-side consumer (a backend).
    This is the only way to them: keep the result out of logs, errors and the store."""
    values = _secrets_of(obj)
    if values is None:
        return {}
    if keyring is None:
        raise UnreadableSecret(
            f"{_describe(obj, '*')}: this server has no secret key to "
            f"decrypt credentials with: {NO_KEY_HINT}"
        )
    return {name: keyring.open(value, what=_describe(obj, name)) for name, value in values.items()}


def _describe(obj: Mapping[str, Any], name: str) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    kind = str(obj.get("kind"))
    return f"{kind} {ns + '/' if ns else ''}{meta.get('name')}: {_field(kind, name)}"


def _invalid(where: str, message: str) -> Invalid:
    return Invalid(f"{where}: {message}", causes=[Cause(where, message)])
