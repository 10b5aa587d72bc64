"""A status report is ordered by arrival, not by the band's clock: its ``ts`` is the
band's own account, and a clock far off does not refuse it (the bad ts is dropped)."""

from __future__ import annotations

import json

import pytest

from eldercare.protocol import Limits, Rejected, RejectReason, StatusReport, Uplink, decode
from eldercare.topics import Channel, device_topic

NOW = 1_767_254_400_000
LIMITS = Limits()
STATUS = device_topic("wb-1", Channel.STATUS)


def status(**fields: object) -> Uplink | Rejected:
    doc = {"device_id": "wb-1", "state": "offline", "reason": "power off", **fields}
    return decode(STATUS, json.dumps(doc).encode(), now_ms=NOW, limits=LIMITS)


@pytest.mark.parametrize(
    "ts", [NOW + LIMITS.max_future_ms + 1, NOW + 600_000, NOW - LIMITS.max_age_ms - 1]
)
def test_a_status_with_a_clock_far_off_is_taken_without_its_ts(ts: int) -> None:
    """Before 2026-12-04 it was refused whole (future_timestamp or stale_timestamp): a
    band whose clock ran 10 minutes fast powered off and stayed "online"."""
    assert status(ts=ts) == StatusReport(device_id="wb-1", state="offline", reason="power off")


def test_a_status_keeps_a_ts_within_the_clock_window_and_is_refused_for_the_rest() -> None:
    assert status(ts=NOW - 1000) == StatusReport(
        device_id="wb-1", state="offline", reason="power off", ts=NOW - 1000
    )
    assert status() == StatusReport(device_id="wb-1", state="offline", reason="power off")
    # outside what a timestamp can be at all (1970: a clock never set) is still invalid
    refused = status(ts=5)
    assert isinstance(refused, Rejected)
    assert refused.reason is RejectReason.INVALID
    assert isinstance(status(state="asleep", ts=NOW), Rejected)
