"""Accelerometer windows as a band uploads them (docs/protocol.md, impact windows).

A band that sees |a| >= ``IMPACT_TRIGGER_G`` uploads the window's first part
(``early_window``: 2.5 s before to 0.8 s after the impact) at once, then the
whole window (``whole_window``) a moment after it ends. Some models stamp each
batch of samples with one time instead of per sample (``BATCH_STAMP_MS``).
Each function takes the band's sequence number and clock from its ``Uplink``
and the upload delay from the band's generator, in that order.
"""

from __future__ import annotations

import random
from typing import Final

import numpy as np

from eldercare.protocol import ImuWindow, encode
from simulators import motion
from simulators.uplink import Uplink

# Impact windows (docs/protocol.md): a band that sees |a| >= IMPACT_TRIGGER_G uploads the
# window's first part (2.5 s before to 0.8 s after the impact) at once, then the whole window.
IMPACT_TRIGGER_G = 2.0
EARLY_BEFORE_MS = 2_500
EARLY_AFTER_MS = 800
EARLY_UPLOAD_MS = (150, 500)  # sending it over the cellular link
# Models that stamp each batch of accelerometer samples with one time, when the
# sensor's FIFO hands it over (as Fitbit's SDK does), instead of per sample.
BATCH_STAMP_MS: Final = {"EC-W3": 100}


def stamps(model: str, t_ms: list[int]) -> list[int]:
    """The sample times as this band model reports them."""
    period = BATCH_STAMP_MS.get(model)
    return t_ms if period is None else [(t // period + 1) * period for t in t_ms]


def whole_window(
    uplink: Uplink, rng: random.Random, *, model: str, t_ms: int, s: motion.Samples, trigger: str
) -> tuple[int, bytes]:
    """The window whose key moment is at ``t_ms``, uploaded a moment after it ends:
    (upload time, encoded window)."""
    begin = t_ms - s.event_ms
    w = ImuWindow(device_id=uplink.device_id, seq=uplink.next_seq(), ts=uplink.device_ts(begin),
                  t_ms=stamps(model, s.t_ms), ax=s.ax, ay=s.ay, az=s.az, trigger=trigger)  # type: ignore[arg-type]  # fmt: skip
    return begin + s.t_ms[-1] + rng.randint(500, 2500), encode(w)


def early_window(
    uplink: Uplink, rng: random.Random, *, model: str, t_ms: int, s: motion.Samples
) -> tuple[int, bytes]:
    """The first part of an impact window, uploaded at once: (upload time, encoded window)."""
    keep = [i for i, x in enumerate(s.t_ms)
            if s.event_ms - EARLY_BEFORE_MS <= x <= s.event_ms + EARLY_AFTER_MS]  # fmt: skip
    first = s.t_ms[keep[0]]
    begin = t_ms - s.event_ms + first
    w = ImuWindow(
        device_id=uplink.device_id, seq=uplink.next_seq(), ts=uplink.device_ts(begin),
        t_ms=stamps(model, [s.t_ms[i] - first for i in keep]), ax=[s.ax[i] for i in keep],
        ay=[s.ay[i] for i in keep], az=[s.az[i] for i in keep], trigger="impact",
    )  # fmt: skip
    sent = t_ms + EARLY_AFTER_MS + rng.randint(*EARLY_UPLOAD_MS)
    return sent, encode(w)


def without_gravity(s: motion.Samples) -> motion.Samples:
    """The window as a band's orientation filter reports it, as linear acceleration: each
    axis less its 1 s moving average (a band model misconfigured this way; the protocol
    wants acceleration with gravity, and ingest refuses a window whose median |a| is
    below 0.2 g). Calm movements come out near 0 g; vigorous ones may stay above."""
    k = motion.HZ
    out = []
    for axis in (s.ax, s.ay, s.az):
        a = np.asarray(axis, dtype=np.float64)
        padded = np.pad(a, (k // 2, k - 1 - k // 2), mode="edge")
        slow = np.convolve(padded, np.ones(k) / k, mode="valid")
        out.append(np.round(a - slow, 4).tolist())
    return motion.Samples(s.t_ms, out[0], out[1], out[2], s.event_ms)
