"""Where the test suite finds the repository's own files. Shared harness code lives in
stratum.testing; test modules import only these paths from here, never each other."""

from pathlib import Path

from stratum.cli.bench import data_dir

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DASHBOARDS = sorted((REPO / "dashboards").glob("*.json"))
# The Alibaba OpenB trace, where `stratum bench` finds it (the shared data folder next to the
# checkout, or $STRATUM_DATA_DIR); the tests that replay it say so when it is absent.
OPENB = data_dir() / "alibaba-openb"
NO_OPENB = f"the Alibaba openb trace is not at {OPENB} (../shared/data or $STRATUM_DATA_DIR)"
