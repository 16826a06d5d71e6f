"""The simulated backend: a digital twin of a fleet, with telemetry and fault injection."""
