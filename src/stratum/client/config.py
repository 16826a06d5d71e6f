"""Where the CLI and SDK find the server: environment first, then the config file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stratum.core.errors import Invalid

DEFAULT_SERVER = "http://127.0.0.1:8080"
CONFIG_KEYS = ("server", "token", "namespace")


def config_path() -> Path:
    """$STRATUM_CONFIG, else $XDG_CONFIG_HOME/stratum/config.yaml."""
    if explicit := os.environ.get("STRATUM_CONFIG"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stratum" / "config.yaml"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    server: str = DEFAULT_SERVER
    token: str | None = field(default=None, repr=False)  # never in a repr or a log line
    namespace: str | None = None


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise Invalid(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise Invalid(f"{path}: expected a mapping of {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise Invalid(
            f"{path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(CONFIG_KEYS)}"
        )
    return data


def write_config_value(key: str, value: str | None, path: Path | None = None) -> Path:
    if key not in CONFIG_KEYS:
        raise Invalid(f"unknown config key {key!r}; expected one of {', '.join(CONFIG_KEYS)}")
    path = path or config_path()
    data = read_config_file(path)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file may hold a token: readable by its owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=True)
    return path


def load_config() -> ClientConfig:
    """STRATUM_SERVER / STRATUM_TOKEN / STRATUM_NAMESPACE override the config file."""
    data = read_config_file()
    return ClientConfig(
        server=os.environ.get("STRATUM_SERVER") or data.get("server") or DEFAULT_SERVER,
        token=os.environ.get("STRATUM_TOKEN") or data.get("token"),
        namespace=os.environ.get("STRATUM_NAMESPACE") or data.get("namespace"),
    )
