"""HTTP API for operators, workers and families."""
