"""Each day's wake-up and bedtime (migration 011) against the real PostgreSQL: the summary
SQL equals the pure rule (alerts.detectors.waking.wake_and_bed) on the same rows, and the
learned window reaches the profile and the inactivity routine."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from alerts.baselines import load_baselines
from alerts.daily_summary import daily_longest_still, local_day_bounds, summarise_days
from alerts.detectors.inactivity import learn_threshold
from alerts.detectors.localtime import local_time
from alerts.detectors.types import SUMMARY_WAKING, Profile
from alerts.detectors.waking import learn_waking_window, wake_and_bed
from eldercare.db import StoragePath
from eldercare.migrate import migrations_for
from tests.support import STEP_COLUMNS, copy_telemetry, routine_by_minutes

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
FIRST = date(2025, 3, 1)
NOW = datetime(2025, 3, 10, 9, 30, tzinfo=ZONE).astimezone(UTC)
EVERY = timedelta(minutes=2)
# resident -> (usual wake hour, usual bed hour): a late sleeper, an early one, a sparse walker
HOURS = {1: (9.5, 23.0), 2: (6.0, 20.0), 3: (7.5, 22.0)}
Row = tuple[datetime, str, int, int, int, bool]


def rows() -> list[Row]:
    """2-minute step reports; toilet trips at night, a quiet hour some afternoons."""
    rng = random.Random(11)
    out: list[Row] = []
    for rid, (wake_h, bed_h) in HOURS.items():
        at = datetime.combine(FIRST, time(0), ZONE).astimezone(UTC)
        steps, seq = 0, 0
        day: date | None = None
        wake, bed = wake_h, bed_h
        trips: tuple[float, ...] = ()
        while at < NOW:
            local = at.astimezone(ZONE)
            if local.date() != day:
                day = local.date()
                steps = 0  # the band's daily counter restarts
                wake = wake_h + rng.gauss(0, 0.4)
                bed = min(23.9, bed_h + rng.gauss(0, 0.4))
                trips = tuple(rng.uniform(1.0, wake - 0.5) for _ in range(rng.randint(0, 3)))
            h = local.hour + local.minute / 60
            if wake <= h < bed:
                if rng.random() < (0.3 if rid == 3 else 0.8):
                    steps += rng.randint(1, 60)
            elif any(t <= h < t + 0.1 for t in trips):  # a toilet trip: two or three reports
                steps += rng.randint(5, 20)
            out.append((at, f"wb-{rid}", seq, rid, steps, rng.random() > 0.02))
            seq += 1
            at += EVERY
    return out


async def seed(db_url: str) -> list[Row]:
    data = rows()
    await copy_telemetry(db_url, STEP_COLUMNS, data)
    return data


def moves_of(data: list[Row], rid: int, day: date) -> list[datetime]:
    """Movements within the local day, as the summary counts them (new steps against the
    band's previous report of that day)."""
    start, end = local_day_bounds(day, TZ)
    out: list[datetime] = []
    last: int | None = None
    for at, _, _, r, steps, _ in data:
        if r != rid or not start <= at < end:
            continue
        if last is not None and (steps > last or (steps < last and steps > 0)):
            out.append(at)
        last = steps
    return out


def reference_routine(data: list[Row], rid: int, window: tuple[time, time]) -> timedelta | None:
    """Independently of the summaries: each day's longest stretch between two movements
    (from 3 March 00:00, the window's first day, as if nothing was known before it),
    counted minute by minute inside ``window``, then learn_threshold."""
    start = datetime.combine(date(2025, 3, 3), time(0), ZONE).astimezone(UTC)
    moves = [start] + [m for d in range(3, 10) for m in moves_of(data, rid, date(2025, 3, d))]
    return routine_by_minutes(
        moves, window=window, zone=ZONE, days=(date(2025, 3, 3), date(2025, 3, 10))
    )


async def test_wake_and_bed_in_sql_equal_the_pure_rule(db_url: str) -> None:
    data = await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        got = await load_baselines(conn, now=NOW, days=7, tz=TZ)
        cur = await conn.execute(
            "SELECT resident_id, day, wake_at, bed_at, first_move_at, last_move_at,"
            " still_from, still_to FROM resident_daily_activity ORDER BY 1, 2"
        )
        summary = await cur.fetchall()
    days = [date(2025, 3, d) for d in range(3, 10)]
    assert {(r[0], r[1]) for r in summary} == {(rid, d) for rid in HOURS for d in days}
    for rid, day, wake_at, bed_at, *_ in summary:
        assert (wake_at, bed_at) == wake_and_bed(moves_of(data, rid, day), tz=TZ), (rid, day)
    for rid in HOURS:
        mine = [r for r in summary if r[0] == rid]
        window = learn_waking_window(
            [local_time(r[2], TZ) for r in mine if r[2] is not None],
            [local_time(r[3], TZ) for r in mine if r[3] is not None],
        )
        assert window is not None
        assert got[rid].waking == window
        per_day = {r[1]: (r[4], r[5], list(zip(r[6], r[7], strict=True))) for r in mine}
        routine = learn_threshold(daily_longest_still(per_day, tz=TZ, window=window))
        assert got[rid].inactivity_routine == routine
        assert routine == reference_routine(data, rid, window)
    # the late sleeper's mornings in bed are not stillness: with 07-22 they would be
    assert reference_routine(data, 1, SUMMARY_WAKING) >= timedelta(hours=3)
    assert got[1].inactivity_routine == timedelta(hours=2)
    late = got[1].apply(Profile(1))
    early = got[2].apply(Profile(2))
    assert time(8, 30) <= late.waking_start <= time(10, 0)
    assert late.waking_end >= time(22, 45)
    assert early.waking_start <= time(6, 15)
    assert time(19, 45) <= early.waking_end <= time(20, 30)


async def test_migration_011_has_days_summarised_before_it_summarised_again(db_url: str) -> None:
    data = await seed(db_url)
    sql = next(m.sql for m in migrations_for(StoragePath.PLAIN) if m.version == 11)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await summarise_days(conn, now=NOW, tz=TZ)
        # a day summarised before migration 011: no wake-up or bedtime
        await conn.execute(
            "UPDATE resident_daily_activity SET wake_at = NULL, bed_at = NULL WHERE day = %s",
            (date(2025, 3, 5),),
        )
        await conn.execute(sql)
        await conn.execute(sql)  # idempotent: the summarised days stay
        cur = await conn.execute("SELECT day FROM daily_summary_days ORDER BY day")
        left = [r[0] for r in await cur.fetchall()]
        again = await summarise_days(conn, now=NOW, tz=TZ)
        cur = await conn.execute(
            "SELECT resident_id, wake_at, bed_at FROM resident_daily_activity WHERE day = %s",
            (date(2025, 3, 5),),
        )
        redone = await cur.fetchall()
    assert date(2025, 3, 5) not in left
    assert len(left) == 6
    assert again == [date(2025, 3, 5)]
    for rid, wake_at, bed_at in redone:
        assert (wake_at, bed_at) == wake_and_bed(moves_of(data, rid, date(2025, 3, 5)), tz=TZ)


async def test_migration_012_has_days_summarised_before_it_summarised_again(db_url: str) -> None:
    await seed(db_url)
    sql = next(m.sql for m in migrations_for(StoragePath.PLAIN) if m.version == 12)
    day = date(2025, 3, 6)
    query = "SELECT resident_id, still_from, still_to FROM resident_daily_activity WHERE day = %s"
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await summarise_days(conn, now=NOW, tz=TZ)
        cur = await conn.execute(query, (day,))
        fresh = sorted(await cur.fetchall())
        # a day summarised before migration 012: no still stretches
        await conn.execute(
            "UPDATE resident_daily_activity SET still_from = NULL, still_to = NULL WHERE day = %s",
            (day,),
        )
        await conn.execute(sql)
        await conn.execute(sql)  # idempotent: the summarised days stay
        cur = await conn.execute("SELECT day FROM daily_summary_days ORDER BY day")
        left = [r[0] for r in await cur.fetchall()]
        again = await summarise_days(conn, now=NOW, tz=TZ)
        cur = await conn.execute(query, (day,))
        redone = sorted(await cur.fetchall())
    assert day not in left
    assert len(left) == 6
    assert again == [day]
    assert redone == fresh
    assert all(len(f) == len(t) >= 1 for _, f, t in fresh)  # the night, at least
