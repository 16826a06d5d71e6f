"""Data-plane backends: simulated, local, agent, kubernetes; one Protocol in base."""
