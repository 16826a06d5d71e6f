"""Observability: every metric definition (one registry per process part), logging setup and
tracing. Importable from reconcile, server and agents; it imports none of them, nor the store.
"""
