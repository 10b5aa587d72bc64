"""Dispatch: service workers, work orders, assignment."""
