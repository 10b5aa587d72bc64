"""Wristband ingest: MQTT in -> decode (pure) -> batch writer (COPY) -> PostgreSQL."""
