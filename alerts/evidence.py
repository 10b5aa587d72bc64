"""What bands reported since a fall, and tonight's steps, read back at a restart.

The I/O half of :func:`alerts.restart_falls.with_evidence` and
:func:`alerts.restart_falls.with_alert_evidence`: for each band with a fall episode, its
step counters from the last report before the impact on, its "I'm OK" presses,
the reports of it being off the wrist and its heart rates on the wrist since the
impact (band clock, as the impact time). A few bands at start-up: two queries each.

And of :func:`alerts.restart_night.with_night`: at night, each resident's steps since
the night began, counted in SQL as the detector counts them (the rule of
:func:`alerts.detectors.night_activity.steps_in`), and each band's last
counter; one query per night start (one, unless residents' time zones differ).
:func:`with_fixes`: the recent location fixes (telemetry and device events) of
residents whose band's last fix (``device_state``) is not surely inside a safe
zone; two queries in all.
:func:`load_closed_conditions`: the condition alerts closed lately, with who closed them
(:mod:`alerts.restart_mutes`); one query.
:func:`restore_states` is the whole restart: seeds, then the three, then the mutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow, class_row

from alerts.detectors import AlertEvent, Profile, ResidentState
from alerts.detectors.night_activity import night_of, night_start
from alerts.restart import NIGHT_LOOKBACK, WATCH_LOOKBACK, seed_states
from alerts.restart_falls import (
    FallEvidence,
    HeldReport,
    fall_devices,
    with_alert_evidence,
    with_evidence,
    with_held_reports,
)
from alerts.restart_geofence import Fix, geofence_lookback, may_be_outside, with_fixes
from alerts.restart_mutes import CONDITIONS, MUTE_LOOKBACK, ClosedAlert, with_restored_mutes
from alerts.restart_night import NightEvidence, with_night
from alerts.shard import EVERYONE, Shard
from alerts.store import COLUMNS, open_alerts, recently_closed
from eldercare.protocol import Location, LocationSource

Conn = psycopg.AsyncConnection[TupleRow]


async def load_fall_evidence(conn: Conn, since: Mapping[str, datetime]) -> dict[str, FallEvidence]:
    """``since``: band id -> impact time (from :func:`alerts.restart_falls.fall_devices`)."""
    out: dict[str, FallEvidence] = {}
    for device_id, impact_at in since.items():
        cur = await conn.execute(
            "(SELECT time, steps, worn, hr FROM telemetry WHERE device_id = %(d)s"
            "  AND time < %(t)s AND steps IS NOT NULL ORDER BY time DESC LIMIT 1)"
            " UNION ALL"
            " (SELECT time, steps, worn, hr FROM telemetry WHERE device_id = %(d)s"
            "  AND time >= %(t)s ORDER BY time, seq)",
            {"d": device_id, "t": impact_at},
        )
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT time FROM device_events WHERE device_id = %s AND type = 'im_ok'"
            " AND time >= %s ORDER BY time",
            (device_id, impact_at),
        )
        oks = await cur.fetchall()
        reports = [(r[0], None if r[1] is None else int(r[1]), r[2],
                    None if r[3] is None else int(r[3])) for r in rows]  # fmt: skip
        out[device_id] = FallEvidence.from_reports(reports, [r[0] for r in oks], impact_at)
    await conn.commit()
    return out


# Each resident's latest band fall report stored since %(since)s (the band's clock may
# be off: its time is bounded loosely, for the partitions; received_at decides).
_HELD = """
SELECT DISTINCT ON (resident_id) resident_id, device_id, time, received_at
FROM device_events
WHERE type = 'fall' AND resident_id IS NOT NULL AND time >= %(since)s - interval '1 day'
  AND received_at >= %(since)s AND received_at <= %(now)s
ORDER BY resident_id, time DESC
"""


async def load_held_reports(conn: Conn, *, since: datetime, now: datetime) -> list[HeldReport]:
    """Each resident's latest band fall report stored in [since, now] (any shard's)."""
    cur = await conn.execute(_HELD, {"since": since, "now": now})
    out = [HeldReport(int(r), str(d), t, min(at, now)) for r, d, t, at in await cur.fetchall()]
    await conn.commit()
    return out


# Each band's new steps since ``since`` (a report's steps against the band's previous
# report, up to an hour before; not while off the wrist), its last step counter and that
# report's band time (the engine ignores older readings against it: alerts.restart_night).
_TONIGHT = """
WITH s AS (
    SELECT resident_id, device_id, time, seq, worn IS NOT FALSE AS on_wrist, steps,
           lag(steps) OVER (PARTITION BY device_id ORDER BY time, seq) AS prev
    FROM telemetry
    WHERE time >= %(since)s - interval '1 hour' AND resident_id = ANY(%(residents)s)
      AND steps IS NOT NULL
)
SELECT resident_id, device_id,
       coalesce(sum(CASE WHEN time < %(since)s OR NOT on_wrist OR prev IS NULL THEN 0
                         WHEN steps >= prev THEN steps - prev ELSE steps END), 0),
       (array_agg(steps ORDER BY time DESC, seq DESC))[1],
       max(time)
FROM s
GROUP BY resident_id, device_id
"""


async def load_night_evidence(
    conn: Conn, profiles: Mapping[int, Profile], *, now: datetime
) -> dict[int, NightEvidence]:
    """Tonight so far for every resident whose night it is at ``now`` (none by day)."""
    groups: dict[datetime, list[int]] = {}
    nights = {}
    for rid, profile in profiles.items():
        night = night_of(now, profile)
        if night is not None:
            nights[rid] = night
            groups.setdefault(night_start(night, profile), []).append(rid)
    out: dict[int, NightEvidence] = {}
    for since, residents in groups.items():
        cur = await conn.execute(_TONIGHT, {"since": since, "residents": residents})
        for rid, device_id, steps, last, last_at in await cur.fetchall():
            r = int(rid)
            got = out.get(r) or NightEvidence(nights[r], 0, {})
            counter = (int(last), last_at)
            out[r] = NightEvidence(got.night, got.steps + int(steps),
                                   {**got.counters, str(device_id): counter})  # fmt: skip
    await conn.commit()
    return out


def _location(lat: float, lon: float, acc_m: float | None, src: str | None) -> Location | None:
    try:
        return Location(float(lat), float(lon), float(acc_m or 0.0), LocationSource(src or "gps"))
    except ValueError:  # a source this version does not know: not a fix to judge
        return None


# Every fix of the residents since %(since)s up to %(now)s, telemetry and device events.
_FIXES = """
SELECT resident_id, time, device_id, lat, lon, loc_acc_m, loc_src FROM (
    SELECT resident_id, time, seq, device_id, lat, lon, loc_acc_m, loc_src FROM telemetry
    WHERE resident_id = ANY(%(residents)s) AND time >= %(since)s AND time <= %(now)s
      AND lat IS NOT NULL
    UNION ALL
    SELECT resident_id, time, seq, device_id, lat, lon, loc_acc_m, loc_src FROM device_events
    WHERE resident_id = ANY(%(residents)s) AND time >= %(since)s AND time <= %(now)s
      AND lat IS NOT NULL
) AS fixes
ORDER BY time, seq
"""


async def load_fixes(
    conn: Conn, profiles: Mapping[int, Profile], *, now: datetime
) -> dict[int, list[Fix]]:
    """The recent fixes of every resident (of ``profiles``) whose last fix may leave
    them out, for :func:`alerts.restart_geofence.geofence_lookback` before ``now``: from
    telemetry and from device events (an SOS pressed out of doors carries a fix),
    as the live detector sees both."""
    since = {rid: now - geofence_lookback(p) for rid, p in profiles.items() if p.safe_zones}
    cur = await conn.execute(  # the band's last fix, telemetry's or an event's (ingest)
        "SELECT resident_id, lat, lon, loc_acc_m, loc_src FROM device_state"
        " WHERE resident_id = ANY(%s) AND lat IS NOT NULL AND loc_at >= %s",
        (list(since), min(since.values(), default=now)),
    )
    out_maybe: set[int] = set()
    for rid, lat, lon, acc, src in await cur.fetchall():
        loc = _location(lat, lon, acc, src)
        if loc is not None and may_be_outside(loc, profiles[int(rid)]):
            out_maybe.add(int(rid))
    fixes: dict[int, list[Fix]] = {}
    if out_maybe:
        first = min(since[r] for r in out_maybe)
        params = {"residents": sorted(out_maybe), "since": first, "now": now}
        cur = await conn.execute(_FIXES, params)
        for rid, at, device_id, lat, lon, acc, src in await cur.fetchall():
            r = int(rid)
            loc = _location(lat, lon, acc, src)
            if loc is not None and at >= since[r]:
                fixes.setdefault(r, []).append((at, str(device_id), loc))
    await conn.commit()
    return fixes


# Condition alerts closed since %(since)s, each with the actor of its last transition
# (the one that closed it: nothing is recorded on a closed alert).
_CLOSED_CONDITIONS = f"""
SELECT {COLUMNS}, last.actor AS closed_by
FROM alerts
CROSS JOIN LATERAL (SELECT actor FROM alert_transitions t WHERE t.alert_id = alerts.id
                    ORDER BY t.id DESC LIMIT 1) AS last
WHERE type = ANY(%(types)s) AND closed_at >= %(since)s
ORDER BY opened_at, id
"""


async def load_closed_conditions(conn: Conn, *, since: datetime) -> list[ClosedAlert]:
    """Condition alerts (:data:`alerts.restart_mutes.CONDITIONS`) closed at or after
    ``since``, oldest first, with who closed them (any shard's)."""
    async with conn.cursor(row_factory=class_row(ClosedAlert)) as cur:
        await cur.execute(_CLOSED_CONDITIONS, {"types": sorted(CONDITIONS), "since": since})
        rows = await cur.fetchall()
    await conn.commit()
    return rows


async def restore_states(
    conn: Conn, profiles: Mapping[int, Profile], *, now: datetime, shard: Shard = EVERYONE
) -> tuple[dict[int, ResidentState], list[AlertEvent]]:
    """Detector states after a restart: the stored alerts, the band fall reports it may
    have been holding, what bands reported since a fall, tonight's steps and the recent
    fixes of residents who may be out (see :mod:`alerts.restart`); of the ``shard``'s
    residents only (``profiles`` are the shard's). With them, the alert events that what the bands
    reported while the engine was down calls for now (a red heart rate after a fall).
    Last, the condition alerts people closed (anyone but the engine) are muted again
    (:mod:`alerts.restart_mutes`), after the replays: one a detector holds open again is
    an ordinary mute at once."""
    stored = await open_alerts(conn)
    ended = await recently_closed(conn, types=("fall", "long_lie", "sos"),
                                  since=now - WATCH_LOOKBACK)  # fmt: skip
    nights = await recently_closed(conn, types=("night_activity",), since=now - NIGHT_LOOKBACK)
    stored = [a for a in stored if shard.owns(a.resident_id)]
    closed = [a for a in ended + nights if shard.owns(a.resident_id)]
    states = seed_states(stored, recently_closed=closed)
    held = await load_held_reports(conn, since=now - WATCH_LOOKBACK, now=now)
    falls_stored = [a for a in stored + closed if a.type in ("fall", "long_lie")]
    states = with_held_reports(states, [r for r in held if shard.owns(r.resident_id)],
                               falls_stored)  # fmt: skip
    fall_evidence = await load_fall_evidence(conn, fall_devices(states))
    states = with_evidence(states, fall_evidence, profiles)
    states, events = with_alert_evidence(states, fall_evidence, profiles, now=now)
    states = with_night(states, await load_night_evidence(conn, profiles, now=now))
    states = with_fixes(states, await load_fixes(conn, profiles, now=now), profiles)
    conditions = await load_closed_conditions(conn, since=now - MUTE_LOOKBACK)
    mine = [a for a in conditions if shard.owns(a.resident_id)]
    return with_restored_mutes(states, mine, stored, now=now), events
