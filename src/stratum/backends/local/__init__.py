"""The local runtime: this host is a node; each replica runs under its own supervisor.

`from stratum.backends.local.runtime import LocalRuntime` is the API (runtime.py); the
package itself imports nothing, so the supervisor process starts fast."""
