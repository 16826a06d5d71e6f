"""Bearer tokens: how they look, how their secrets are hashed and checked.

A token reads ``stt_<id>_<secret>``: the id finds the record, the secret is checked against
a salted scrypt hash of it. Only the hash is kept; the token is shown once, at creation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "stt"
_TOKEN = re.compile(r"^stt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# scrypt costs about 16 MiB and a few tens of milliseconds per check: cheap for one login,
# costly for anyone who steals the table and tries to guess.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token as made: `value` goes to the caller once; the rest is stored."""

    id: str
    value: str
    salt: str
    secret_hash: str


def hash_secret(secret: str, salt: str) -> str:
    digest = hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt), n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return digest.hex()


def new_token() -> NewToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_hex(16)
    return NewToken(
        id=token_id,
        value=f"{PREFIX}_{token_id}_{secret}",
        salt=salt,
        secret_hash=hash_secret(secret, salt),
    )


def parse_token(value: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    match = _TOKEN.match(value.strip())
    return None if match is None else (match.group(1), match.group(2))


def secret_matches(secret: str, salt: str, secret_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret, salt), secret_hash)
