"""docs/reference/cli.md and kinds.md are what the CLI and the models say now
(regenerate with `PYTHONPATH=src python scripts/gen_docs.py`)."""

from __future__ import annotations

from pathlib import Path

from stratum.cli.reference import cli_markdown, kinds_markdown

DOCS = Path(__file__).resolve().parents[3] / "docs" / "reference"


def test_cli_reference_is_current() -> None:
    text = cli_markdown()
    assert "## stratum get" in text and "`--no-headers`" in text
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == text, "run scripts/gen_docs.py"


def test_kinds_reference_is_current() -> None:
    text = kinds_markdown()
    assert "`spec.contract.topology.acrossReplicas`" in text
    assert (DOCS / "kinds.md").read_text(encoding="utf-8") == text, "run scripts/gen_docs.py"
