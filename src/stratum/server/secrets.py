"""Where the server's secret keys come from: a key file (mode 0600, checked) or
$STRATUM_SECRET_KEYS, newest key first; and the key file a first start may make."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from stratum.core.errors import Invalid
from stratum.core.secrets import Keyring

ENV_KEYS = "STRATUM_SECRET_KEYS"
DEFAULT_KEY_FILE = "secret.key"


def read_key_file(path: Path) -> Keyring:
    """The keys in a file only its owner may read: one per line (or comma-separated)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise Invalid(
            f"secret key file {path} does not exist (make one with "
            f"`stratum secrets generate-key > {path}; chmod 600 {path}`)"
        ) from None
    if not stat.S_ISREG(mode):
        raise Invalid(f"secret key file {path} is not a regular file")
    if mode & 0o077:
        raise Invalid(
            f"secret key file {path} may be read by others (mode "
            f"{stat.S_IMODE(mode):04o}): run `chmod 600 {path}`"
        )
    try:
        return Keyring.parse(path.read_text())
    except ValueError as err:
        raise Invalid(f"secret key file {path}: {err}") from None


def load_keyring(*, key_file: Path | None, keys: str | None) -> Keyring | None:
    """The key file if given, else the keys text (from $STRATUM_SECRET_KEYS), else None:
    a server without a key runs, and refuses to store credentials."""
    if key_file is not None:
        return read_key_file(key_file)
    if keys is None:
        keys = os.environ.get(ENV_KEYS)
    if not keys or not keys.strip():
        return None
    try:
        return Keyring.parse(keys)
    except ValueError as err:
        raise Invalid(f"{ENV_KEYS}: {err}") from None


def create_key_file(path: Path) -> None:
    """Write a new key to `path`, readable by its owner only (never over an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# Stratum secret keys, newest first (see `stratum secrets rotate`)\n")
        out.write(Keyring.generate_key() + "\n")
