"""Metrics (Prometheus, CloudWatch EMF), tracing (OpenTelemetry, X-Ray ids), JSON logs."""
