"""One virtual wristband: what it measures, when it sends, and how it misbehaves.

``Band.outputs`` is a pure generator over simulated time: ``Publish`` values
(topic, payload bytes, QoS, retain) and ``Link`` changes (the band's MQTT
connection going down or up), in time order. It models the device, not the
network: a sequence number shared by every uplink message, a drifting clock
(payload ``ts`` is the band's clock, ``t_ms`` the true time), a battery that
drains and is charged in the evening or overnight, taking the band off,
reconnects with store-and-forward (readings taken offline are sent in order on
reconnect) and, now and then, the last message before a drop resent with its
sequence number (the PUBACK was lost). Everything random comes from the band's
own seeded generators, so a band's stream depends only on seed, index and plan.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import Final

import numpy as np

from eldercare.protocol import (
    DeviceEvent,
    EventType,
    ImuWindow,
    Location,
    StatusReport,
    Telemetry,
    encode,
)
from eldercare.topics import Channel, device_topic
from simulators import motion
from simulators.location import fix, true_position
from simulators.physiology import OUTDOORS, Activity, BodyState, DayPlan, Effects, plan_day, vitals
from simulators.physiology import step_rate as _step_rate
from simulators.profiles import DAY_MS, LOCAL_OFFSET_MS, Profile
from simulators.scenario import Background, Episode

MAX_CLOCK_ERROR_MS = 90_000
STORE_CAPACITY = 5_000  # readings kept while offline; the oldest are dropped beyond
LOW_BATTERY_PCT = 15
# Impact windows (docs/protocol.md): a band that sees |a| >= IMPACT_TRIGGER_G uploads the
# window's first part (2.5 s before to 0.8 s after the impact) at once, then the whole window.
IMPACT_TRIGGER_G = 2.0
EARLY_BEFORE_MS = 2_500
EARLY_AFTER_MS = 800
EARLY_UPLOAD_MS = (150, 500)  # sending it over the cellular link
# Models that stamp each batch of accelerometer samples with one time, when the
# sensor's FIFO hands it over (as Fitbit's SDK does), instead of per sample.
BATCH_STAMP_MS: Final = {"EC-W3": 100}
_WEAR_FREE = frozenset({"band_removed", "device_offline", "low_battery", "adl"})


@dataclass(frozen=True, slots=True)
class Publish:
    t_ms: int  # true (simulated) time the band sends it
    device_id: str
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """The band's connection goes up (``up``) or is lost; ``will`` is its offline status."""

    t_ms: int
    device_id: str
    up: bool
    will: bytes


Output = Publish | Link


@dataclass(frozen=True, slots=True)
class _Send:
    channel: Channel
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Event:
    kind: EventType
    data: dict[str, object] | None = None
    loc: Location | None = None


def will_payload(device_id: str) -> bytes:
    return encode(StatusReport(device_id=device_id, state="offline", reason="connection lost"))


class Band:
    def __init__(
        self,
        profile: Profile,
        *,
        seed: int,
        episodes: list[Episode],
        background: Background,
    ) -> None:
        self.p = profile
        self.device_id = profile.device_id
        self.episodes = sorted(episodes, key=lambda e: e.start_ms)
        self.bg = background
        self.rng = random.Random(f"band:{seed}:{profile.index}")
        self.np_rng = np.random.default_rng([seed, profile.index])
        self.will = will_payload(self.device_id)
        self._topics = {c: device_topic(self.device_id, c) for c in Channel}
        # state of a run, reset by outputs()
        self._start = 0
        self._clock0 = 0.0
        self._ppm = 0.0
        self._seq = 0
        self._online = False
        self._store: list[Publish] = []
        self._last_sent: Publish | None = None
        self._resend_last = False
        self._battery = 100.0
        self._low_sent = False
        self._charge_until = 0
        self._charge_len_h = 1.0
        self._steps = 0.0
        self._worn = True
        self._charging_now = False
        self._body = BodyState()
        self._plan: DayPlan = plan_day(profile, -1, self.rng)
        self._tick_n = 0
        self._removed_until = 0

    # -- helpers -------------------------------------------------------------------------

    def _device_ts(self, t_ms: int) -> int:
        err = self._clock0 + self._ppm * 1e-6 * (t_ms - self._start)
        return t_ms + int(max(-MAX_CLOCK_ERROR_MS, min(MAX_CLOCK_ERROR_MS, err)))

    def _active(self, t_ms: int) -> list[Episode]:
        return [e for e in self.episodes if e.start_ms <= t_ms < e.end_ms]

    def _send(self, t_ms: int, channel: Channel, payload: bytes) -> Iterator[Output]:
        pub = Publish(t_ms, self.device_id, self._topics[channel], payload)
        if self._online:
            self._last_sent = pub
            yield pub
        else:
            self._store.append(pub)
            if len(self._store) > STORE_CAPACITY:
                del self._store[0]

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) % 4_294_967_296
        return self._seq

    def _event(
        self, t_ms: int, kind: EventType, *, loc: Location | None = None,
        data: dict[str, object] | None = None,
    ) -> Iterator[Output]:  # fmt: skip
        msg = DeviceEvent(device_id=self.device_id, seq=self._next_seq(),
                          ts=self._device_ts(t_ms), type=kind, loc=loc, data=data)  # fmt: skip
        yield from self._send(t_ms, Channel.EVENTS, encode(msg))

    def _link(self, t_ms: int, up: bool) -> Iterator[Output]:
        if up == self._online:
            return
        self._online = up
        yield Link(t_ms, self.device_id, up, self.will)
        if not up:
            return
        status = StatusReport(device_id=self.device_id, state="online",
                              ts=self._device_ts(t_ms), interval_s=self.p.interval_s,
                              firmware=self.p.firmware)  # fmt: skip
        yield Publish(t_ms, self.device_id, self._topics[Channel.STATUS], encode(status),
                      retain=True)  # fmt: skip
        last = self._last_sent
        if last is not None and self._resend_last:
            yield Publish(t_ms, last.device_id, last.topic, last.payload)  # same seq, same bytes
        for pub in self._store:
            yield Publish(t_ms, pub.device_id, pub.topic, pub.payload)
        if self._store:
            self._last_sent = self._store[-1]
        self._store.clear()

    def _location(self, t_ms: int, activity: Activity, wander: Episode | None) -> Location:
        h = self._hour(t_ms)
        w = None
        if wander is not None:
            hours = (t_ms - wander.start_ms) / 3_600_000
            w = (np.radians(float(wander.params["bearing_deg"])),
                 float(wander.params["speed_m_per_h"]), hours)  # fmt: skip
        lat, lon = true_position(self.p, activity=activity, plan=self._plan, h=h, wander=w)
        return fix(lat, lon, outdoors=activity in OUTDOORS, rng=self.rng)

    def _hour(self, t_ms: int) -> float:
        return ((t_ms + LOCAL_OFFSET_MS) % DAY_MS) / 3_600_000

    def _charging(self, h: float, wear_needed: bool, t_ms: int) -> bool:
        if wear_needed:
            return False
        if t_ms < self._charge_until:
            return True
        plan = self._plan
        if self.p.charges_overnight:
            return h >= plan.sleep_h - 0.1 or h < plan.wake_h - 0.1
        return plan.sleep_h - self._charge_len_h <= h < plan.sleep_h - 0.1

    # -- the stream ------------------------------------------------------------------------

    def outputs(self, start_ms: int, end_ms: int) -> Iterator[Output]:
        """Everything the band does in ``[start_ms, end_ms)``, in time order."""
        rng = self.rng
        self._start = start_ms
        self._clock0 = rng.gauss(0, 1500)
        self._ppm = rng.gauss(0, 15)
        self._seq = rng.randrange(0, 100_000)
        self._battery = rng.uniform(45, 100)
        self._charge_len_h = rng.uniform(0.8, 1.8)
        drain = 0.8 + 6.0 / self.p.interval_s  # % per hour
        order = count()
        agenda: list[tuple[int, int, str, object]] = []

        def at(t: int, what: str, data: object = None) -> None:
            heapq.heappush(agenda, (t, next(order), what, data))

        at(start_ms, "up")
        at(start_ms + rng.randrange(0, self.p.interval_s * 1000), "tick")
        for e in self.episodes:
            at(e.start_ms, "begin", e)
            at(e.end_ms, "end", e)
        days = (end_ms - start_ms) / DAY_MS
        for _ in range(_poisson(self.bg.reconnects_per_day * days, rng)):
            t = rng.randrange(start_ms, end_ms)
            if not any(e.start_ms - 600_000 <= t < e.end_ms for e in self.episodes):
                at(t, "down")
                at(t + round(min(300.0, 10 + rng.expovariate(1 / 60)) * 1000), "up")
        interval_ms = self.p.interval_s * 1000
        while agenda and agenda[0][0] < end_ms:
            t, _, what, data = heapq.heappop(agenda)
            if what == "tick":
                yield from self._tick(t, drain)
                at(t + interval_ms + rng.randint(-150, 150), "tick")
            elif what == "begin" and isinstance(data, Episode):
                for when, action, action_data in self._begin(t, data):
                    at(when, action, action_data)
            else:
                yield from self._do(t, what, data)

    def _do(self, t: int, what: str, data: object) -> Iterator[Output]:
        if what == "up":
            yield from self._link(t, True)
        elif what == "down":
            self._resend_last = self.rng.random() < self.bg.duplicate_on_reconnect
            yield from self._link(t, False)
        elif what == "send" and isinstance(data, _Send):
            yield from self._send(t, data.channel, data.payload)
        elif what == "event" and isinstance(data, _Event):
            yield from self._event(t, data.kind, data=data.data, loc=data.loc)
        elif what == "end" and isinstance(data, Episode):
            yield from self._end(t, data)

    def _tick(self, t: int, drain_per_h: float) -> Iterator[Output]:
        rng = self.rng
        p = self.p
        local = t + LOCAL_OFFSET_MS
        day = local // DAY_MS
        h = (local % DAY_MS) / 3_600_000
        if day != self._plan.day:
            self._plan = plan_day(p, day, rng)
            self._steps = 0.0  # today's count resets at local midnight
        active = self._active(t)
        effects, wander = _effects(active)
        activity = effects.activity if effects.activity is not None else self._plan.activity(h)
        wear_needed = any(e.type not in _WEAR_FREE for e in active)
        charging = self._charging(h, wear_needed, t)
        removed = t < self._removed_until or any(e.type == "band_removed" for e in active)
        worn = not charging and not removed
        yield from self._power(t, charging=charging, worn=worn, outdoors=activity in OUTDOORS,
                               drain_per_h=drain_per_h)  # fmt: skip
        if worn and not effects.still:
            rate = effects.step_rate
            self._steps += (rate if rate is not None else _step_rate(p, activity, rng)) * (
                p.interval_s / 60
            )
        self._tick_n += 1
        n = self._tick_n
        loc = None
        outdoors = activity in OUTDOORS
        if outdoors or n % max(1, 300 // p.interval_s) == 0:
            loc = self._location(t, activity, wander)
        msg: Telemetry
        if worn:
            v = vitals(p, h=h, activity=activity, effects=effects, state=self._body,
                       wake_h=self._plan.wake_h, rng=rng)  # fmt: skip
            dropout = self.bg.dropout * (3 if outdoors else 1)
            every_spo2 = max(1, 180 // p.interval_s)
            every_bp = max(1, (300 if effects.bp_level else 600) // p.interval_s)
            bp = n % every_bp == 0
            # a low reading makes the band re-measure every interval
            spo2_now = effects.spo2_level is not None or (n % every_spo2 == 0 and not outdoors)
            msg = Telemetry(
                device_id=self.device_id, seq=self._next_seq(), ts=self._device_ts(t),
                hr=None if rng.random() < dropout else v.hr,
                spo2=v.spo2 if spo2_now else None,
                bp_sys=v.bp_sys if bp else None, bp_dia=v.bp_dia if bp else None,
                skin_temp_c=v.skin_temp_c, steps=int(self._steps), battery_pct=round(self._battery),
                worn=True, loc=loc,
            )  # fmt: skip
        else:
            msg = Telemetry(device_id=self.device_id, seq=self._next_seq(), ts=self._device_ts(t),
                            steps=int(self._steps), battery_pct=round(self._battery), worn=False,
                            loc=loc)  # fmt: skip
        yield from self._send(t, Channel.TELEMETRY, encode(msg))

    def _power(
        self, t: int, *, charging: bool, worn: bool, outdoors: bool, drain_per_h: float
    ) -> Iterator[Output]:
        """Charging and wear transitions, battery drain or charge, the low-battery warning."""
        if charging != self._charging_now:
            self._charging_now = charging
            kind = EventType.CHARGING_START if charging else EventType.CHARGING_STOP
            yield from self._event(t, kind, data={"battery_pct": round(self._battery)})
        if worn != self._worn:
            self._worn = worn
            yield from self._event(t, EventType.WORN if worn else EventType.REMOVED)
        dt_h = self.p.interval_s / 3600
        if charging:
            self._battery = min(100.0, self._battery + 40.0 * dt_h)
            if self._battery > 30:
                self._low_sent = False
        else:
            gps = 1.0 if outdoors else 0.0
            self._battery = max(1.0, self._battery - (drain_per_h + gps) * dt_h)
        battery = round(self._battery)
        if battery < LOW_BATTERY_PCT and not self._low_sent:
            self._low_sent = True
            yield from self._event(t, EventType.LOW_BATTERY, data={"battery_pct": battery})

    def _stamps(self, t_ms: list[int]) -> list[int]:
        """The sample times as this band model reports them."""
        period = BATCH_STAMP_MS.get(self.p.model)
        return t_ms if period is None else [(t // period + 1) * period for t in t_ms]

    def _imu(self, t_ms: int, s: motion.Samples, trigger: str) -> tuple[int, str, object]:
        """The window whose key moment is at ``t_ms``, uploaded a moment after it ends."""
        begin = t_ms - s.event_ms
        w = ImuWindow(device_id=self.device_id, seq=self._next_seq(), ts=self._device_ts(begin),
                      t_ms=self._stamps(s.t_ms), ax=s.ax, ay=s.ay, az=s.az, trigger=trigger)  # type: ignore[arg-type]  # fmt: skip
        return (
            begin + s.t_ms[-1] + self.rng.randint(500, 2500),
            "send",
            _Send(Channel.IMU, encode(w)),
        )

    def _early(self, t_ms: int, s: motion.Samples) -> tuple[int, str, object]:
        """The first part of an impact window, uploaded at once (docs/protocol.md)."""
        keep = [i for i, x in enumerate(s.t_ms)
                if s.event_ms - EARLY_BEFORE_MS <= x <= s.event_ms + EARLY_AFTER_MS]  # fmt: skip
        first = s.t_ms[keep[0]]
        begin = t_ms - s.event_ms + first
        w = ImuWindow(
            device_id=self.device_id, seq=self._next_seq(), ts=self._device_ts(begin),
            t_ms=self._stamps([s.t_ms[i] - first for i in keep]), ax=[s.ax[i] for i in keep],
            ay=[s.ay[i] for i in keep], az=[s.az[i] for i in keep], trigger="impact",
        )  # fmt: skip
        sent = t_ms + EARLY_AFTER_MS + self.rng.randint(*EARLY_UPLOAD_MS)
        return sent, "send", _Send(Channel.IMU, encode(w))

    def _begin(self, t: int, e: Episode) -> Iterator[tuple[int, str, object]]:
        """What an episode does when it starts, as (time, action, data) for the agenda."""
        rng = self.rng
        kind = e.type
        if kind == "fall":
            params = e.params
            s = motion.fall(self.np_rng, direction=params["direction"], origin=params["origin"],
                            long_lie=bool(params["long_lie"]))  # fmt: skip
            if self.p.fall_detection:
                peak = float(np.max(motion.magnitude(s)))
                data: dict[str, object] = {
                    "peak_g": round(peak, 2),
                    "confidence": round(rng.uniform(0.6, 0.98), 2),
                }
                yield t + rng.randint(1500, 4000), "event", _Event(EventType.FALL, data)
                if not e.params["long_lie"] and rng.random() < 0.4:
                    yield t + rng.randint(10_000, 30_000), "event", _Event(EventType.IM_OK, None)
            yield self._early(t, s)
            yield self._imu(t, s, "impact")
        elif kind == "adl":
            adl_kind = e.params["kind"]
            s = motion.adl(self.np_rng, adl_kind)
            if float(np.max(motion.magnitude(s))) >= IMPACT_TRIGGER_G:  # the band cannot tell
                yield self._early(t, s)
                yield self._imu(t, s, "impact")
            else:
                yield self._imu(t, s, "motion")
            if adl_kind == "band_on_table":
                self._removed_until = t + rng.randint(180_000, 600_000)
            if adl_kind == "sit_down_hard" and self.p.fall_detection and rng.random() < 0.15:
                yield t + rng.randint(1500, 4000), "event", _Event(EventType.FALL, {"peak_g": 2.4})
                yield t + rng.randint(8_000, 20_000), "event", _Event(EventType.IM_OK, None)
        elif kind == "sos":
            loc = self._location(t, self._plan.activity(self._hour(t)), None)
            yield t, "event", _Event(EventType.SOS, None, loc)
        elif kind == "device_offline":
            yield t, "down", None
        elif kind == "low_battery":
            self._battery = float(e.params["battery_pct"])

    def _still_down(self, t_ms: int, ended: Episode) -> bool:
        """Another fall or inactivity episode still holds the resident down at ``t_ms``."""
        return any(
            e is not ended and e.type in ("fall", "inactivity") and e.start_ms <= t_ms < e.end_ms
            for e in self.episodes
        )

    def _end(self, t: int, e: Episode) -> Iterator[Output]:
        if e.type == "fall" and not e.params.get("long_lie") and not self._still_down(t, e):
            self._steps += getting_up_steps(e)
        if e.type == "sos" and e.params.get("cancelled"):
            yield from self._event(t, EventType.IM_OK)
        elif e.type == "device_offline":
            yield from self._link(t, True)
        elif e.type == "low_battery":
            self._charge_until = t + 3_600_000  # finally put on the charger


# Steps the band counts when a resident who fell gets up (the end of a fall without a long
# lie): from standing they walk on or back to bed, from a chair they may sit down again, out
# of bed they climb back in. A guess, not a measurement; what matters for the alert engine
# is that it is neither always 0 (nobody gets up without a step) nor always many.
GETTING_UP_STEPS: Final = {"standing": (8, 40), "chair": (2, 20), "bed": (0, 6)}


def getting_up_steps(e: Episode) -> int:
    """Drawn from the episode alone, so the band's other random streams are unchanged."""
    lo, hi = GETTING_UP_STEPS.get(str(e.params.get("origin")), (0, 10))
    return random.Random(f"getting-up:{e.id}:{e.device_id}:{e.start_ms}").randint(lo, hi)


def _effects(active: list[Episode]) -> tuple[Effects, Episode | None]:
    eff = Effects()
    wander = None
    for e in active:
        k = e.type
        if k in ("tachycardia", "bradycardia"):
            eff.hr_level = float(e.params["hr"])
        elif k == "hypoxaemia":
            eff.spo2_level = float(e.params["spo2"])
        elif k == "fever":
            eff.temp_add += float(e.params["skin_temp_rise_c"])
            eff.hr_add += 10.0
        elif k == "hypertensive_crisis":
            eff.bp_level = (float(e.params["bp_sys"]), float(e.params["bp_dia"]))
            eff.hr_add += 8.0
        elif k == "wandering":
            eff.activity = Activity.WANDER
            wander = e
        elif k == "inactivity":
            eff.activity, eff.still = Activity.REST, True
        elif k == "restless_night":
            eff.activity, eff.step_rate = Activity.REST, float(e.params["steps_per_min"])
        elif k == "fall":
            eff.activity, eff.still = Activity.LYING, True
    return eff, wander


def _poisson(lam: float, rng: random.Random) -> int:
    k, p, limit = 0, 1.0, np.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
