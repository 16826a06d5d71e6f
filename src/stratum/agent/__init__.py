"""`stratum agent`: the process on a bare-metal or edge host that joins a Cluster, runs
what the Placements naming its node say through the local runtime, and reports back.

It sits above the client in the layers and never imports the server, the store or
FastAPI: an idle agent stays small (docs/agent.md says how its memory was measured).
"""
