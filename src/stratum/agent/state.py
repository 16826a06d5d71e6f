"""What the agent keeps on disk between runs: its node-bound token (mode 0600) and the
name and cluster it joined as. The local runtime keeps the runs themselves."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_FILE = "node-token"
IDENTITY_FILE = "node.json"


@dataclass(frozen=True, slots=True)
class Identity:
    node: str
    cluster: str
    token: str


def load(state_dir: Path) -> Identity | None:
    token_file, identity_file = state_dir / TOKEN_FILE, state_dir / IDENTITY_FILE
    if not token_file.exists() or not identity_file.exists():
        return None
    data = json.loads(identity_file.read_text())
    return Identity(str(data["node"]), str(data["cluster"]), token_file.read_text().strip())


def save(state_dir: Path, identity: Identity) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(identity.token + "\n")
    (state_dir / IDENTITY_FILE).write_text(
        json.dumps({"node": identity.node, "cluster": identity.cluster}) + "\n"
    )
