"""Operations: health, readiness, and the Prometheus metrics listener."""
