"""MQTT topic names of device protocol v1 and the platform's internal topics.

Every topic lives under one versioned root so that a protocol v2 can run beside
v1 during a fleet's firmware migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

ROOT = "eldercare/v1"
DEVICE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)


class Channel(StrEnum):
    """The per-device channels of protocol v1."""

    TELEMETRY = "telemetry"
    EVENTS = "events"
    IMU = "imu"
    STATUS = "status"
    CMD = "cmd"  # downlink: platform -> device


UPLINK: tuple[Channel, ...] = (Channel.TELEMETRY, Channel.EVENTS, Channel.IMU, Channel.STATUS)


def device_topic(device_id: str, channel: Channel) -> str:
    """Topic for one device's channel, e.g. ``eldercare/v1/devices/WB1/telemetry``."""
    if not _DEVICE_ID.fullmatch(device_id):
        raise ValueError(f"invalid device id {device_id!r}: must match {DEVICE_ID_PATTERN}")
    return f"{ROOT}/devices/{device_id}/{channel.value}"


def uplink_filters(shared_group: str | None = None) -> list[str]:
    """Subscription filters for every uplink channel, optionally as an MQTT v5 shared group."""
    filters = [f"{ROOT}/devices/+/{channel.value}" for channel in UPLINK]
    if shared_group:
        return [f"$share/{shared_group}/{f}" for f in filters]
    return filters


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    device_id: str
    channel: Channel


@lru_cache(maxsize=1 << 19)  # a city's bands x channels; parsing is on ingest's hot path
def parse_device_topic(topic: str) -> DeviceTopic | None:
    """Split a device topic into device id and channel; None if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[2] != "devices":
        return None
    device_id, channel = parts[3], parts[4]
    if not _DEVICE_ID.fullmatch(device_id):
        return None
    try:
        return DeviceTopic(device_id, Channel(channel))
    except ValueError:
        return None


# Internal topics: what the platform's own processes tell each other.
INTERNAL = f"{ROOT}/internal"
INGESTED = f"{INTERNAL}/ingested"  # one message per committed batch (readings, events, imu)
ALERTS = f"{INTERNAL}/alerts"
DISPATCH = f"{INTERNAL}/dispatch"


def worker_topic(worker_id: str, channel: str) -> str:
    """Topics of a service worker's phone app (offers down, answers and location up)."""
    return f"{ROOT}/workers/{worker_id}/{channel}"


def parse_worker_topic(topic: str) -> tuple[str, str] | None:
    """(worker id, channel) of a :func:`worker_topic`; None if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[2] != "workers":
        return None
    return parts[3], parts[4]
