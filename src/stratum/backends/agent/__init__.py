"""The `agent` backend: hosts that run `stratum agent` and speak the agent protocol."""
