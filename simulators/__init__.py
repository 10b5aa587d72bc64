"""Wristband fleet simulators, scenarios with ground truth, record and replay."""
