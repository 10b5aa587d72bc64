"""Eldercare: the shared package (settings, domain types, protocol, database, CLI)."""
