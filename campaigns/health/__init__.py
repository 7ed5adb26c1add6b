"""Health checks (/healthz, /readyz), beat's heartbeat and the Prometheus endpoint (/metrics)."""
