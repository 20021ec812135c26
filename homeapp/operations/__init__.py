"""What operators use: health, readiness and metrics endpoints, metrics, logs, graceful shutdown."""
