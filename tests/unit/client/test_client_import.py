"""`from stratum.client import Client` is light: no server, store, scheduler or dev tools."""

from __future__ import annotations

import subprocess
import sys


def test_client_import_pulls_in_nothing_heavy() -> None:
    heavy = ("pytest", "hypothesis", "numpy", "sqlalchemy", "fastapi", "typer", "jinja2")
    code = (
        "import sys; from stratum.client import Client, AsyncClient; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
