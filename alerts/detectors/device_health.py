"""Device health: offline, battery low, band not worn. Each alert means a different visit.

* ``device_offline`` (medium): no message for ``interval_factor`` x the band's
  telemetry interval (announced in its status, else the registry value) plus
  ``grace``. A technical problem, not a welfare signal; ``cause`` says whether
  the band powered off, its connection dropped (MQTT last will) or it fell silent.
  A dropped connection gets at least ``reconnect_grace`` (10 min): the broker saw
  the link go, the band keeps measuring, buffers and reconnects by itself (mobile
  networks drop links for seconds to minutes several times a day), so a technical
  check is only worth it when it has not come back by then.
* ``battery_low`` (low): below ``battery_low_pct``; clears on charging or at
  ``battery_clear_pct``. Response: a battery visit or a reminder call.
* ``band_not_worn`` (medium): off the wrist for ``not_worn_after`` (longer while
  charging) counted in waking hours only, as inactivity counts stillness: a band
  charged overnight and put on a few minutes after waking hours begin has been off
  for minutes of waking time, not hours. Response: a welfare check, since nobody
  is protected.
* ``imu_refused`` (medium): the band's movement windows were refused by ingest
  ``imu_refused_after`` (2) times in a row, none accepted between (a band model that
  sends acceleration without gravity, in m/s^2 or raw counts, with its clock wrong):
  the platform's fall detector is off for this wearer, though every other reading
  arrives. Clears when a window is accepted. Response: the band's configuration.
  A band whose other messages are all refused goes ``device_offline`` as before, with
  ``cause: refused`` and the last refusal, instead of ``silent``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from alerts.detectors.lifecycle import OpenAlerts, Want, reconcile
from alerts.detectors.localtime import in_window, time_in_window
from alerts.detectors.types import AlertEvent, AlertType, ClearReason, Profile, Severity, iso
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, StatusReport, Telemetry
from eldercare.topics import Channel
from ingest.rows import Refusal

Message = Telemetry | DeviceEvent | ImuWindow | StatusReport | Refusal  # refused: by ingest


@dataclass(frozen=True, slots=True)
class DeviceTrack:
    last_seen: datetime
    interval_s: int | None = None
    cause: str = "silent"  # why it may be offline: silent, connection_lost, powered_off, refused
    battery_pct: int | None = None
    battery_low: bool = False
    charging: bool = False
    not_worn_since: datetime | None = None
    imu_refused: int = 0  # movement windows refused in a row since the last accepted one
    refusal: Refusal | None = None  # the latest refusal of anything the band sent


@dataclass(frozen=True, slots=True)
class DeviceHealthState:
    devices: Mapping[str, DeviceTrack] = field(default_factory=dict)
    open: OpenAlerts = field(default_factory=dict)


def _battery(track: DeviceTrack, pct: int, profile: Profile) -> DeviceTrack:
    rules = profile.devices
    low = track.battery_low
    if pct < rules.battery_low_pct:
        low = True
    elif pct >= rules.battery_clear_pct:
        low = False
    return replace(track, battery_pct=pct, battery_low=low)


def event_battery_pct(data: Mapping[str, object] | None) -> int | None:
    """The percentage a ``low_battery`` event carries (``data.battery_pct``), if usable.

    ``data`` is whatever the band put there: ingest stores it unchecked. Only a whole
    number 0..100 is a percentage (as ``Telemetry.battery_pct``); JSON ``true`` is a
    Python int, so bool is refused by name. Anything else leaves the event saying
    "battery low" without a percentage, as when the field is absent.
    """
    pct = (data or {}).get("battery_pct")
    if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
        return None
    return pct


def _worn(track: DeviceTrack, worn: bool | None, now: datetime) -> DeviceTrack:
    if worn is None:
        return track
    if worn:
        return replace(track, not_worn_since=None)
    return track if track.not_worn_since else replace(track, not_worn_since=now)


def _telemetry(track: DeviceTrack, m: Telemetry, profile: Profile, now: datetime) -> DeviceTrack:
    """What :func:`observe` does for telemetry, built in one step (same result)."""
    pct, low = track.battery_pct, track.battery_low
    if m.battery_pct is not None:
        pct = m.battery_pct
        if pct < profile.devices.battery_low_pct:
            low = True
        elif pct >= profile.devices.battery_clear_pct:
            low = False
    since = track.not_worn_since
    if m.worn is not None:
        since = None if m.worn else (since or now)
    return DeviceTrack(now, track.interval_s, "silent", pct, low, track.charging, since,
                       track.imu_refused, track.refusal)  # fmt: skip


def _refused(track: DeviceTrack | None, refusal: Refusal, now: datetime) -> DeviceTrack:
    """A message of the band that ingest refused: no sign of usable data (``last_seen``
    stays), but the reason the band may look silent, and for a movement window one
    more in a row the fall detector could not judge."""
    base = track or DeviceTrack(last_seen=now)  # first heard of: watched from now
    count = base.imu_refused + (refusal.channel is Channel.IMU)
    return replace(base, cause="refused", imu_refused=count, refusal=refusal)


def observe(
    track: DeviceTrack | None, message: Message, profile: Profile, now: datetime
) -> DeviceTrack:
    """Update one band's track with a message that just arrived (arrival time = ``now``),
    or with ingest's refusal of one."""
    if isinstance(message, StatusReport) and message.state == "offline":
        base = track or DeviceTrack(last_seen=now)
        return replace(base, cause="connection_lost")  # a last will is no sign of life
    if isinstance(message, Telemetry) and track is not None:
        return _telemetry(track, message, profile, now)  # the hot path: one new value
    if isinstance(message, Refusal):
        return _refused(track, message, now)
    t = replace(track, last_seen=now, cause="silent") if track else DeviceTrack(last_seen=now)
    if isinstance(message, ImuWindow) and t.imu_refused:
        t = replace(t, imu_refused=0)
    if isinstance(message, StatusReport) and message.interval_s is not None:
        t = replace(t, interval_s=message.interval_s)
    elif isinstance(message, Telemetry):
        if message.battery_pct is not None:
            t = _battery(t, message.battery_pct, profile)
        t = _worn(t, message.worn, now)
    elif isinstance(message, DeviceEvent):
        kind = message.type
        if kind is EventType.POWER_OFF:
            t = replace(t, cause="powered_off")
        elif kind is EventType.LOW_BATTERY:
            t = replace(t, battery_low=True, battery_pct=event_battery_pct(message.data))
        elif kind in (EventType.CHARGING_START, EventType.CHARGING_STOP):
            t = replace(t, charging=kind is EventType.CHARGING_START)
        elif kind in (EventType.REMOVED, EventType.WORN):
            t = _worn(t, kind is EventType.WORN, now)
        elif kind in (EventType.SOS, EventType.FALL, EventType.IM_OK):
            t = _worn(t, True, now)  # somebody is wearing and using it
    return t


def offline_after(track: DeviceTrack, profile: Profile) -> timedelta:
    interval = track.interval_s or profile.expected_interval_s
    rules = profile.devices
    after = timedelta(seconds=interval * rules.interval_factor) + rules.grace
    if track.cause == "connection_lost":
        return max(after, rules.reconnect_grace)
    return after


def is_offline(
    track: DeviceTrack, profile: Profile, now: datetime, *, since: datetime | None = None
) -> bool:
    """Silent past its limit (and, with ``since``, for that long since ``since`` too)."""
    last = track.last_seen if since is None else max(track.last_seen, since)
    return now - last > offline_after(track, profile)


def _wants(
    state: DeviceHealthState, profile: Profile, now: datetime
) -> Mapping[AlertType, Want | None]:
    offline: list[tuple[str, DeviceTrack]] = []
    battery: list[tuple[str, DeviceTrack]] = []
    not_worn: list[tuple[str, DeviceTrack]] = []
    imu: list[tuple[str, DeviceTrack]] = []
    already = AlertType.BAND_NOT_WORN in state.open
    for device_id, t in sorted(state.devices.items()):
        if is_offline(t, profile, now):
            offline.append((device_id, t))
            continue
        if t.battery_low and not t.charging:
            battery.append((device_id, t))
        if t.imu_refused >= profile.devices.imu_refused_after:
            imu.append((device_id, t))
        if t.not_worn_since is not None:
            rules = profile.devices
            allowed = rules.not_worn_charging_after if t.charging else rules.not_worn_after
            if already or (
                now - t.not_worn_since > allowed
                and in_window(now, profile.waking_start, profile.waking_end, profile.tz)
                and time_in_window(t.not_worn_since, now, profile.waking_start,
                                   profile.waking_end, profile.tz) > allowed
            ):  # fmt: skip
                not_worn.append((device_id, t))
    if not (offline or battery or not_worn or imu):
        return _NOTHING  # the common case: every band well
    return {
        AlertType.DEVICE_OFFLINE: _want(Severity.MEDIUM, offline, lambda t: {
            "cause": t.cause, "response": "technical_check", "last_seen": iso(t.last_seen),
            "expected_within_s": offline_after(t, profile).total_seconds(),
            **(_refusal_detail(t) if t.cause == "refused" else {}),
        }, key=",".join(f"{d}:{t.cause}" for d, t in offline)),
        AlertType.BATTERY_LOW: _want(Severity.LOW, battery, lambda t: {
            "cause": "battery_low", "response": "battery_visit", "battery_pct": t.battery_pct,
        }),
        AlertType.BAND_NOT_WORN: _want(Severity.MEDIUM, not_worn, lambda t: {
            "cause": "band_not_worn", "response": "welfare_check",
            "since": iso(t.not_worn_since or now), "charging": t.charging,
        }),
        AlertType.IMU_REFUSED: _want(Severity.MEDIUM, imu, lambda t: {
            "cause": "imu_refused", "response": "band_configuration",
            "windows_refused": t.imu_refused, **_refusal_detail(t, Channel.IMU),
        }),
    }  # fmt: skip


_NOTHING: Mapping[AlertType, Want | None] = dict.fromkeys(
    (AlertType.DEVICE_OFFLINE, AlertType.BATTERY_LOW, AlertType.BAND_NOT_WORN,
     AlertType.IMU_REFUSED)
)  # fmt: skip


def _want(
    severity: Severity,
    found: list[tuple[str, DeviceTrack]],
    detail: Callable[[DeviceTrack], dict[str, object]],
    *,
    key: str | None = None,
) -> Want | None:
    """The alert for the bands ``found`` (none: nothing wanted): the first band's detail,
    every band listed; news (an update) when the bands, or ``key``, change."""
    if not found:
        return None
    device_id, track = found[0]
    devices = [d for d, _ in found]
    return Want(severity, device_id, {**detail(track), "devices": devices},
                key=",".join(devices) if key is None else key)  # fmt: skip


def _refusal_detail(track: DeviceTrack, channel: Channel | None = None) -> dict[str, str]:
    """Why the band's latest message (on ``channel``, if given) was refused."""
    r = track.refusal
    if r is None or (channel is not None and r.channel is not channel):
        return {}
    return {"refused_channel": r.channel.value, "refused_reason": r.reason.value,
            "refused_detail": r.detail}  # fmt: skip


def _clear_reason(alert_type: AlertType, state: DeviceHealthState) -> ClearReason:
    if alert_type is AlertType.DEVICE_OFFLINE:
        return ClearReason.DEVICE_BACK_ONLINE
    if alert_type is AlertType.BAND_NOT_WORN:
        return ClearReason.BAND_WORN
    if alert_type is AlertType.IMU_REFUSED:
        return ClearReason.DATA_ACCEPTED
    charging = any(t.charging for t in state.devices.values())
    return ClearReason.CHARGING if charging else ClearReason.BATTERY_RECOVERED


def evaluate(
    state: DeviceHealthState, profile: Profile, now: datetime, *, feed_since: datetime | None = None
) -> tuple[DeviceHealthState, list[AlertEvent]]:
    """The time-driven part: what should be open at ``now``.

    ``feed_since``: since when the platform has heard its bands without a break (the
    alert engine's feed from ingest, :mod:`alerts.feed`). A band silent past its limit,
    but for less than that limit since the feed came back, may be silent only because the
    platform was (a broker, ingest or network outage): nothing is raised or cleared for
    the resident's bands at this tick; their backlog or their silence will tell. Before
    2026-12-04 a ten-minute outage raised ``device_offline`` for every band in the city
    at once."""
    if feed_since is not None and any(
        is_offline(t, profile, now) and not is_offline(t, profile, now, since=feed_since)
        for t in state.devices.values()
    ):
        return state, []
    opened, events = state.open, []
    reconciled = False
    for alert_type, want in _wants(state, profile, now).items():
        if want is None and alert_type not in opened:
            continue  # nothing wanted, nothing open: nothing to reconcile
        reconciled = True
        opened, evs = reconcile(
            opened,
            alert_type,
            want,
            resident_id=profile.resident_id,
            at=now,
            clear_reason=_clear_reason(alert_type, state),
        )
        events.extend(evs)
    if not reconciled:
        return state, events  # the common case, unchanged: the same object
    return DeviceHealthState(state.devices, opened), events


def keep_bands(
    state: DeviceHealthState, profile: Profile, now: datetime
) -> tuple[DeviceHealthState, list[AlertEvent]]:
    """Forget the bands that are no longer the resident's (``profile.bands``: paired to
    someone else, revoked) and clear what only they held open (``band_unpaired``).

    Until 2026-12-04 a band once seen was tracked for good: re-paired, it went on
    raising ``device_offline`` for its old wearer, and when an operator closed that
    (muting it), the wearer's new band could go silent unnoticed."""
    bands = profile.bands
    if bands is None or all(d in bands for d in state.devices):
        return state, []
    devices = {d: t for d, t in state.devices.items() if d in bands}
    kept = DeviceHealthState(devices, state.open)
    opened, events = state.open, []
    for alert_type, want in _wants(kept, profile, now).items():
        if want is None and alert_type not in opened:
            continue
        opened, evs = reconcile(opened, alert_type, want, resident_id=profile.resident_id,
                                at=now, clear_reason=ClearReason.BAND_UNPAIRED)  # fmt: skip
        events.extend(evs)
    return DeviceHealthState(devices, opened), events


def step(
    state: DeviceHealthState, profile: Profile, message: Message, now: datetime
) -> tuple[DeviceHealthState, list[AlertEvent]]:
    known = state.devices.get(message.device_id)
    track = observe(known, message, profile, now)
    if (
        isinstance(message, Telemetry)
        and not state.open
        and len(state.devices) == (known is not None)  # this is the resident's only band
        and track.not_worn_since is None
        and not (track.battery_low and not track.charging)
    ):  # the common case: the one band just reported, worn and charged, nothing open;
        # evaluate() would want nothing (a band seen now is not offline)
        return DeviceHealthState({message.device_id: track}, state.open), []
    state = DeviceHealthState({**state.devices, message.device_id: track}, state.open)
    return evaluate(state, profile, now)


def band_usable(state: DeviceHealthState, profile: Profile, now: datetime) -> bool:
    """Some band is online and on the wrist, so silence from it means stillness."""
    return any(
        t.not_worn_since is None and (t.last_seen >= now or not is_offline(t, profile, now))
        for t in state.devices.values()
    )  # a band seen at ``now`` is not offline: the common case skips the interval rules
