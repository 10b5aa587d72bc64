"""Night activity against the real PostgreSQL: the summary SQL counts each night part's
steps as the pure rule does, and a restarted engine rebuilds tonight's count."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from alerts.daily_summary import local_day_bounds, summarise_days
from alerts.detectors.night_activity import COVER_MAX_GAP, steps_in
from alerts.detectors.types import AlertType, NightActivityBaseline
from alerts.engine import AlertEngine
from alerts.lifecycle import Outcome
from alerts.store import resolve
from eldercare.protocol import Telemetry
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.support import STEP_COLUMNS, Clock, copy_telemetry, ingest_settings, register_bands

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
FIRST = date(2025, 3, 1)
NOW = datetime(2025, 3, 6, 9, 30, tzinfo=ZONE).astimezone(UTC)

Row = tuple[datetime, str, int, int, int | None, bool | None]  # time, band, seq, resident...


def night_rows() -> list[Row]:
    """Two residents, reports every 2-9 min with silences, walking at night now and then,
    off the wrist at times, each band's counter restarting at local midnight; resident 1
    wears a second band for part of each night."""
    rng = random.Random(11)
    out: list[Row] = []
    start = datetime.combine(FIRST, time(0), ZONE).astimezone(UTC)
    for rid, band in ((1, "wb-1"), (1, "wb-1b"), (2, "wb-2")):
        at, steps, seq, day = start, 0, 0, FIRST
        while at < NOW:
            local = at.astimezone(ZONE)
            if local.date() != day:
                day, steps = local.date(), 0
            night = not 7 <= local.hour < 22
            if band == "wb-1b" and not (local.hour >= 23 or local.hour < 2):
                at += timedelta(minutes=7)
                continue
            steps += rng.randint(0, 60) if (not night or rng.random() < 0.2) else 0
            worn: bool | None = rng.choice([True, True, True, None, False])
            out.append((at, band, seq, rid, steps if rng.random() > 0.05 else None, worn))
            seq += 1
            at += timedelta(minutes=rng.choice([2, 5, 9, 20 if rng.random() < 0.05 else 3]))
    return sorted(out)


async def write(db_url: str, rows: list[Row]) -> None:
    await copy_telemetry(db_url, STEP_COLUMNS, rows)


def covered(rows: list[Row], start: datetime, end: datetime) -> float:
    """Seconds of [start, end) covered by worn reports at most COVER_MAX_GAP apart."""
    last: dict[str, datetime] = {}
    total = 0.0
    for at, band, _, _, steps, worn in rows:
        if steps is None:
            continue
        prev = last.get(band)
        last[band] = at
        if start <= at < end and worn is not False and prev and at - prev <= COVER_MAX_GAP:
            total += (at - max(prev, start)).total_seconds()
    return min(total, (end - start).total_seconds())


async def test_night_parts_count_steps_as_the_pure_rule_does(db_url: str) -> None:
    rows = night_rows()
    await write(db_url, rows)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await summarise_days(conn, now=NOW, tz=TZ, days=7)
        cur = await conn.execute("SELECT resident_id, day, morning_steps, morning_covered_s,"
                                 " evening_steps, evening_covered_s FROM resident_daily_night"
                                 " ORDER BY resident_id, day")  # fmt: skip
        got = await cur.fetchall()
    assert len(got) == 2 * 5  # 1-5 March for both residents
    for rid, day, m_steps, m_cov, e_steps, e_cov in got:
        mine = [r for r in rows if r[3] == rid]
        reports = [(band, at, steps, worn) for at, band, _, _, steps, worn in mine]
        start, end = local_day_bounds(day, TZ)
        wake = datetime.combine(day, time(7), ZONE).astimezone(UTC)
        sleep = datetime.combine(day, time(22), ZONE).astimezone(UTC)
        assert m_steps == steps_in(reports, start, wake), (rid, day)
        assert e_steps == steps_in(reports, sleep, end), (rid, day)
        assert abs(m_cov - covered(mine, start, wake)) < 1.0
        assert abs(e_cov - covered(mine, sleep, end)) < 1.0
    assert any(r[2] > 0 for r in got)
    assert any(r[3] < 7 * 3600 for r in got)  # some silences were not covered


def silent_evening_rows() -> list[Row]:
    """A band reporting every 5 min, ~6,000 steps by day, 10 at 02:00, and off from 20:30
    to 22:10 every evening (a flat battery); on 2 March it still counted 30 steps in the
    silence (a band that counts but does not send)."""
    out: list[Row] = []
    at = datetime.combine(FIRST, time(0), ZONE).astimezone(UTC)
    steps, seq = 0, 0
    while at < datetime.combine(FIRST + timedelta(days=4), time(0), ZONE).astimezone(UTC):
        local = at.astimezone(ZONE)
        steps = 0 if local.time() == time(0) else steps
        steps += 40 if 7 <= local.hour < 20 else 10 if (local.hour, local.minute) == (2, 0) else 0
        steps += 30 if (local.date(), local.hour, local.minute) == (date(2025, 3, 2), 21, 0) else 0
        if not time(20, 30) <= local.time() < time(22, 10):
            out.append((at, "wb-silent", seq, 3, steps, True))
            seq += 1
        at += timedelta(minutes=5)
    return out


async def test_a_band_silent_before_the_evening_counts_its_first_report_against_its_last(
    db_url: str,
) -> None:
    """The first report after the silence counts its steps against the band's report of
    20:25, as the engine does (steps_in), not against its last report before 07:00: the
    day's ~6,000 steps were the evening's, and the usual night ~6,000 (review, 2026-12-04)."""
    rows = silent_evening_rows()
    await write(db_url, rows)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await summarise_days(conn, now=NOW, tz=TZ, days=7)
        cur = await conn.execute(
            "SELECT day, morning_steps, evening_steps FROM resident_daily_night"
            " WHERE resident_id = 3 ORDER BY day"
        )
        got = await cur.fetchall()
    reports = [(band, at, steps, worn) for at, band, _, _, steps, worn in rows]
    want = []
    for day in (FIRST + timedelta(days=i) for i in range(4)):
        start, end = local_day_bounds(day, TZ)
        wake = datetime.combine(day, time(7), ZONE).astimezone(UTC)
        sleep = datetime.combine(day, time(22), ZONE).astimezone(UTC)
        want.append((day, steps_in(reports, start, wake), steps_in(reports, sleep, end)))
    assert got == want
    assert [e for _, _, e in got] == [0, 30, 0, 0]  # what the band counted in the silence
    assert [m for _, m, _ in got] == [10, 10, 10, 10]


# -- restart --------------------------------------------------------------------------------

# the night of 2 March; 02:00 local is a restart in the middle of it
TONIGHT = date(2025, 3, 2)
T2 = datetime(2025, 3, 2, 2, 0, tzinfo=ZONE).astimezone(UTC)


async def usual_quiet_nights(db_url: str, resident: int) -> None:
    """Seven summarised quiet nights (50 steps) before tonight: threshold 300 (the floor)."""
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        for i in range(1, 9):
            day = TONIGHT - timedelta(days=i)
            await conn.execute(
                "INSERT INTO resident_daily_night VALUES (%s, %s, 50, 25200, 0, 7200)",
                (resident, day),
            )
            if i <= 7:
                await conn.execute("INSERT INTO daily_summary_days VALUES (%s, %s, now(), 1)",
                                   (day, TZ))  # fmt: skip
        await conn.commit()


async def night_alerts(db_url: str, resident: int) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT id, state, detail->'steps_tonight', repeat_count FROM alerts"
            " WHERE resident_id = %s AND type = %s ORDER BY id",
            (resident, AlertType.NIGHT_ACTIVITY.value),
        )
        return await cur.fetchall()


def local(h: int, m: int) -> datetime:
    """Local h:m of tonight (the evening before TONIGHT from noon)."""
    day = TONIGHT - timedelta(days=1 if h >= 12 else 0)
    return datetime.combine(day, time(h, m), ZONE).astimezone(UTC)


async def report(engine: AlertEngine, db_url: str, dev: str, resident: int, *, at: datetime,
                 seq: int, steps: int) -> None:  # fmt: skip
    """What ingest does: store the report, then hand it to the engine."""
    await write(db_url, [(at, dev, seq, resident, steps, True)])
    t = Telemetry(device_id=dev, seq=seq, ts=int(at.timestamp() * 1000), steps=steps, worn=True)
    await engine.on_batch(IngestedBatch(telemetry=[Accepted(t, resident)]))


async def test_a_restart_rebuilds_tonights_count_and_raises_once(
    db_url: str, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-nt"
    (resident,) = await register_bands(db_url, [dev])
    await usual_quiet_nights(db_url, resident)
    # before the engine started: 21:50 base, +100, +100, the counter restarts, +50 = 250
    await write(db_url, [(local(21, 50), dev, 1, resident, 4000, True),
                         (local(22, 10), dev, 2, resident, 4100, True),
                         (local(23, 30), dev, 3, resident, 4200, True),
                         (local(0, 10), dev, 4, resident, 50, True),
                         (local(1, 50), dev, 5, resident, 50, True)])  # fmt: skip
    settings = ingest_settings(db_url, "mqtt://127.0.0.1:1")
    clock = Clock(T2)
    engine = AlertEngine(settings, fall_model=None, clock=clock)
    try:
        await engine.tick()  # loads: baselines, and tonight's 250 steps
        # the band's last counter with its band time: an older reading redelivered is late
        seeded = engine.states[resident]
        assert (seeded.last_steps, seeded.steps_at) == (
            {dev: 50}, {dev: int(local(1, 50).timestamp() * 1000)}
        )  # fmt: skip
        profile = engine.profiles[resident]
        assert profile.night_activity == NightActivityBaseline(300, 50.0, 7)
        await report(engine, db_url, dev, resident, at=T2, seq=6, steps=120)  # +70: 320 > 300
    finally:
        await engine.close()
    assert [a[1:] for a in await night_alerts(db_url, resident)] == [("open", 320, 1)]
    clock.at = T2 + timedelta(minutes=30)
    engine = AlertEngine(settings, fall_model=None, clock=clock)
    try:
        await engine.tick()
        assert engine.states[resident].night.steps == 320  # rebuilt again, and already raised
        await report(engine, db_url, dev, resident, at=clock.at, seq=7, steps=400)
        (alert_id, *rest), *more = await night_alerts(db_url, resident)
        assert (rest, more) == (["open", 320, 1], [])  # no second alert, no update
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            await resolve(conn, alert_id, outcome=Outcome.ACTIONABLE, actor="operator:1",
                          at=clock.at)  # fmt: skip
            await conn.commit()
    finally:
        await engine.close()
    clock.at = T2 + timedelta(hours=1)
    engine = AlertEngine(settings, fall_model=None, clock=clock)
    try:
        await engine.tick()
        await report(
            engine, db_url, dev, resident, at=clock.at, seq=8, steps=900
        )  # closed tonight: quiet
    finally:
        await engine.close()
    assert [a[1] for a in await night_alerts(db_url, resident)] == ["resolved"]
