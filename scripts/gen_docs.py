"""Write docs/reference/cli.md and docs/reference/kinds.md from the CLI and the API models.

Usage: PYTHONPATH=src python scripts/gen_docs.py [--check]
With --check, write nothing and exit 1 if either file is not current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stratum.cli.reference import cli_markdown, kinds_markdown

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    ROOT / "docs" / "reference" / "cli.md": cli_markdown,
    ROOT / "docs" / "reference" / "kinds.md": kinds_markdown,
}


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for path, make in FILES.items():
        text = make()
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "is not current" if check else "written"
        sys.stdout.write(f"{path.relative_to(ROOT)} {verb}\n")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
