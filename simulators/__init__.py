"""Wristband fleets, scenarios with ground truth, record and replay (docs/simulators.md).

Pure core: profiles, physiology, location, motion, episode_effects, uplink, imu_windows,
device, scenario, fleet.
Shell: transport (paho-mqtt), runner (pacing), record (record/replay), load, cli.
"""
