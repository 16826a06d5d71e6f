"""`python -m stratum` runs the CLI."""

from stratum.cli.main import run

run()
