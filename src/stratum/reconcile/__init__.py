"""Controllers: observe first, act second; leases, backoff, the clock."""
