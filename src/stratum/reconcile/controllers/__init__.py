"""One controller per kind it drives."""
