"""One virtual wristband: what it measures, when it sends, and how it misbehaves.

``Band.outputs`` is a pure generator over simulated time: ``Publish`` values
(topic, payload bytes, QoS, retain) and ``Link`` changes (the band's MQTT
connection going down or up), in time order. It models the device, not the
network: a battery that drains and is charged in the evening or overnight,
taking the band off, reconnects, and what episodes make it measure and send.
Its uplink (``simulators.uplink``: sequence numbers, a drifting clock,
store-and-forward, resends after a drop), its accelerometer uploads
(``simulators.imu_windows``) and what episodes do to the wearer
(``simulators.episode_effects``) live in their own modules. Everything random
comes from the band's own seeded generators, so a band's stream depends only on
seed, index and plan.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count

import numpy as np

from eldercare.protocol import EventType, Location, Telemetry, encode
from eldercare.topics import Channel
from simulators import motion
from simulators.episode_effects import WEAR_FREE, effects_of, getting_up_steps, still_down
from simulators.imu_windows import IMPACT_TRIGGER_G, early_window, whole_window, without_gravity
from simulators.location import fix, true_position
from simulators.physiology import OUTDOORS, Activity, BodyState, DayPlan, plan_day, vitals
from simulators.physiology import step_rate as _step_rate
from simulators.profiles import DAY_MS, LOCAL_OFFSET_MS, Profile
from simulators.scenario import Background, Episode
from simulators.uplink import Output, Uplink

LOW_BATTERY_PCT = 15
_CALM: tuple[motion.AdlKind, ...] = ("stairs", "lie_on_bed", "sit_down_hard")


@dataclass(frozen=True, slots=True)
class _Send:
    channel: Channel
    payload: bytes


@dataclass(frozen=True, slots=True)
class _Event:
    kind: EventType
    data: dict[str, object] | None = None
    loc: Location | None = None


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
        self.uplink = Uplink(self.device_id, interval_s=profile.interval_s,
                             firmware=profile.firmware)  # fmt: skip
        self.will = self.uplink.will
        # state of a run, reset by outputs()
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

    def _active(self, t_ms: int) -> list[Episode]:
        return [e for e in self.episodes if e.start_ms <= t_ms < e.end_ms]

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
        uplink = self.uplink
        uplink.start = start_ms
        uplink.clock0 = rng.gauss(0, 1500)
        uplink.ppm = rng.gauss(0, 15)
        uplink.seq = rng.randrange(0, 100_000)
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
        uplink = self.uplink
        if what == "up":
            yield from uplink.link(t, True)
        elif what == "down":
            uplink.resend_last = self.rng.random() < self.bg.duplicate_on_reconnect
            yield from uplink.link(t, False)
        elif what == "send" and isinstance(data, _Send):
            yield from uplink.send(t, data.channel, data.payload)
        elif what == "event" and isinstance(data, _Event):
            yield from uplink.event(t, data.kind, data=data.data, loc=data.loc)
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
        effects, wander = effects_of(active)
        activity = effects.activity if effects.activity is not None else self._plan.activity(h)
        wear_needed = any(e.type not in WEAR_FREE for e in active)
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
                device_id=self.device_id, seq=self.uplink.next_seq(),
                ts=self.uplink.device_ts(t), hr=None if rng.random() < dropout else v.hr,
                spo2=v.spo2 if spo2_now else None,
                bp_sys=v.bp_sys if bp else None, bp_dia=v.bp_dia if bp else None,
                skin_temp_c=v.skin_temp_c, steps=int(self._steps), battery_pct=round(self._battery),
                worn=True, loc=loc,
            )  # fmt: skip
        else:
            msg = Telemetry(device_id=self.device_id, seq=self.uplink.next_seq(),
                            ts=self.uplink.device_ts(t), steps=int(self._steps),
                            battery_pct=round(self._battery), worn=False, loc=loc)  # fmt: skip
        yield from self.uplink.send(t, Channel.TELEMETRY, encode(msg))

    def _power(
        self, t: int, *, charging: bool, worn: bool, outdoors: bool, drain_per_h: float
    ) -> Iterator[Output]:
        """Charging and wear transitions, battery drain or charge, the low-battery warning."""
        if charging != self._charging_now:
            self._charging_now = charging
            kind = EventType.CHARGING_START if charging else EventType.CHARGING_STOP
            yield from self.uplink.event(t, kind, data={"battery_pct": round(self._battery)})
        if worn != self._worn:
            self._worn = worn
            yield from self.uplink.event(t, EventType.WORN if worn else EventType.REMOVED)
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
            yield from self.uplink.event(t, EventType.LOW_BATTERY, data={"battery_pct": battery})

    def _linear(self, t_ms: int, s: motion.Samples) -> motion.Samples:
        """During an ``imu_misconfigured`` episode the band sends linear acceleration."""
        if any(e.type == "imu_misconfigured" and e.active(t_ms) for e in self.episodes):
            return without_gravity(s)
        return s

    def _imu(self, t_ms: int, s: motion.Samples, trigger: str) -> tuple[int, str, object]:
        """The window whose key moment is at ``t_ms``, uploaded a moment after it ends."""
        s = self._linear(t_ms, s)
        sent, payload = whole_window(self.uplink, self.rng, model=self.p.model, t_ms=t_ms, s=s,
                                     trigger=trigger)  # fmt: skip
        return sent, "send", _Send(Channel.IMU, payload)

    def _early(self, t_ms: int, s: motion.Samples) -> tuple[int, str, object]:
        """The first part of an impact window, uploaded at once (docs/protocol.md)."""
        s = self._linear(t_ms, s)
        sent, payload = early_window(self.uplink, self.rng, model=self.p.model, t_ms=t_ms, s=s)
        return sent, "send", _Send(Channel.IMU, payload)

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
            yield from self._movement(t, motion.adl(self.np_rng, adl_kind))
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
        elif kind == "imu_misconfigured":
            yield from self._calm_movements(e)
        elif kind == "low_battery":
            self._battery = float(e.params["battery_pct"])

    def _calm_movements(self, e: Episode) -> Iterator[tuple[int, str, object]]:
        """The everyday movement windows the band uploads during ``e`` (calm ones: a
        vigorous movement without gravity may keep its median above 0.2 g and be scored
        as if it had gravity, docs/falls.md)."""
        n = round((e.end_ms - e.start_ms) / 3_600_000 * float(e.params["windows_per_hour"]))
        for t in sorted(self.rng.randrange(e.start_ms, e.end_ms) for _ in range(n)):
            yield from self._movement(t, motion.adl(self.np_rng, self.rng.choice(_CALM)))

    def _movement(self, t: int, s: motion.Samples) -> Iterator[tuple[int, str, object]]:
        """The uploads of an everyday movement: an impact's two if it reaches the impact
        trigger (the band cannot tell it from a fall), else one motion window."""
        if float(np.max(motion.magnitude(s))) >= IMPACT_TRIGGER_G:
            yield self._early(t, s)
            yield self._imu(t, s, "impact")
        else:
            yield self._imu(t, s, "motion")

    def _end(self, t: int, e: Episode) -> Iterator[Output]:
        fall = e.type == "fall"
        if fall and not e.params.get("long_lie") and not still_down(self.episodes, t, e):
            self._steps += getting_up_steps(e)
        if e.type == "sos" and e.params.get("cancelled"):
            yield from self.uplink.event(t, EventType.IM_OK)
        elif e.type == "device_offline":
            yield from self.uplink.link(t, True)
        elif e.type == "low_battery":
            self._charge_until = t + 3_600_000  # finally put on the charger


def _poisson(lam: float, rng: random.Random) -> int:
    k, p, limit = 0, 1.0, np.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
