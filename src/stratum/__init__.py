"""Stratum: a declarative platform for AI workloads on infrastructure its owner controls."""

__version__ = "0.1.0"
