"""Where the test suite finds the repository's own files. Shared harness code lives in
stratum.testing; test modules import only these paths from here, never each other."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))
# The Alibaba OpenB trace, in the shared data folder next to the checkout (when present).
OPENB = REPO.parent / "shared" / "data" / "alibaba-openb"
