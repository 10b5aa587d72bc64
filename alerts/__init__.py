"""Alert engine: detectors (pure) -> alert lifecycle -> events."""
