"""An IMU window must be in g with gravity: what else it could be is refused at decode,
with the reason (ingest keeps it as a dead letter), before the fall detector sees it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from eldercare.protocol import ImuWindow, Limits, Rejected, RejectReason, decode
from eldercare.topics import Channel, device_topic

AT_MS = 1_767_254_400_000


def window(acc: np.ndarray) -> ImuWindow | Rejected:
    t = np.arange(acc.shape[0]) * 20  # 50 Hz
    ax, ay, az = (acc[:, i].tolist() for i in range(3))
    doc = {"device_id": "wb-1", "seq": 1, "ts": AT_MS, "t_ms": t.tolist(),
           "ax": ax, "ay": ay, "az": az}  # fmt: skip
    return decode(device_topic("wb-1", Channel.IMU), json.dumps(doc).encode(),
                  now_ms=AT_MS + 1_000, limits=Limits())  # fmt: skip


def hand(n: int = 500) -> np.ndarray:
    """A resting wrist's small movements, without gravity."""
    t = np.arange(n) / 50.0
    return 0.08 * np.sin(2 * np.pi * 1.5 * t)[:, None] * np.array([1.0, 0.5, 0.3])


def test_a_window_in_g_with_gravity_is_accepted() -> None:
    assert isinstance(window(hand() + np.array([0.0, 0.0, 1.0])), ImuWindow)


@pytest.mark.parametrize(
    ("scale", "offset", "reason"),
    [
        (9.80665, (0.0, 0.0, 9.80665), r"median \|a\| is 9\.8, .*must be in g"),
        (1.0, (0.0, 0.0, 0.0), r"median \|a\| is 0\.\d\d g, .*gravity removed\?"),
    ],
    ids=["metres_per_second_squared", "gravity_removed"],
)
def test_a_window_not_in_g_with_gravity_is_refused_with_its_reason(
    scale: float, offset: tuple[float, float, float], reason: str
) -> None:
    got = window(hand() * scale + np.array(offset))
    assert isinstance(got, Rejected)
    assert got.reason is RejectReason.INVALID
    assert re.search(reason, got.detail), got.detail  # the fault and its likely cause
