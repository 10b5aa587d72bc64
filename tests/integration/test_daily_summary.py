"""The daily summary tables (migration 009) against the real PostgreSQL: the baselines
read from them equal a raw scan of the same days, and the inactivity routine is learned
from each day's still stretches."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from alerts.baselines import load_baselines, scan_baselines
from alerts.daily_summary import local_day_bounds, summarise_days
from alerts.detectors.news2 import VitalParam
from alerts.shard import Shard
from eldercare.migrate import migrate
from tests.conftest import create_database, drop_database
from tests.support import copy_telemetry, routine_by_minutes

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
FIRST = date(2025, 3, 1)
NOW = datetime(2025, 3, 10, 9, 30, tzinfo=ZONE).astimezone(UTC)
EVERY = timedelta(minutes=5)
ILL_DAY = date(2025, 3, 6)  # resident 1 sits still 10:00-13:00 local that day


def rows() -> list[tuple[object, ...]]:
    """Three residents, 5-minute telemetry from 1 March to now, with gaps and oddities."""
    rng = random.Random(4)
    out: list[tuple[object, ...]] = []
    for rid in (1, 2, 3):
        at = datetime.combine(FIRST, time(0), ZONE).astimezone(UTC)
        steps, seq = 0, 0
        while at < NOW:
            local = at.astimezone(ZONE)
            waking = 7 <= local.hour < 21
            ill = rid == 1 and local.date() == ILL_DAY and 10 <= local.hour < 13
            if local.hour == 0 and local.minute == 0:
                steps = 0  # the band's daily counter restarts
            if waking and not ill:
                steps += rng.randint(5, 40)
            worn = rng.random() > 0.03
            hr = rng.randint(55, 95) if rng.random() > 0.05 else None
            spo2 = rng.randint(88, 99) if rid == 2 else rng.randint(94, 99)
            sbp = rng.randint(100, 160) - (12 if not waking else 0)
            temp = round(rng.uniform(31.5, 34.0) + (0.8 if not waking else 0.0), 1)
            out.append((at, f"wb-{rid}", seq, rid, hr, spo2, sbp, sbp - 40, temp, steps, worn))
            seq += 1
            at += EVERY
    return out


async def seed(db_url: str) -> list[tuple[object, ...]]:
    data = rows()
    columns = ("time", "device_id", "seq", "resident_id", "hr", "spo2", "bp_sys", "bp_dia",
               "skin_temp_c", "steps", "worn")  # fmt: skip
    await copy_telemetry(db_url, columns, data)
    return data


async def test_summary_baselines_equal_a_raw_scan_of_the_same_days(db_url: str) -> None:
    await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        summary = await load_baselines(conn, now=NOW, days=7, tz=TZ)
        since = local_day_bounds(date(2025, 3, 3), TZ)[0]
        until = local_day_bounds(date(2025, 3, 10), TZ)[0]
        raw = await scan_baselines(conn, since=since, until=until, tz=TZ)
        cur = await conn.execute("SELECT day FROM daily_summary_days ORDER BY day")
        days = [r[0] for r in await cur.fetchall()]
    assert days == [date(2025, 3, d) for d in range(3, 10)]  # complete days, not today
    assert set(summary) == set(raw) == {1, 2, 3}
    for rid in raw:
        for part in ("day", "night"):
            got, want = getattr(summary[rid], part), getattr(raw[rid], part)
            assert set(got) == set(want) == set(VitalParam)
            for param, b in want.items():
                assert got[param].n == b.n
                assert got[param].median == pytest.approx(b.median, abs=1e-6)
                assert got[param].scale == pytest.approx(b.scale, abs=1e-6)
                assert got[param].low == pytest.approx(b.low, abs=1e-6)


# bins and readings in the vitals histograms
BINS = "SELECT count(*), sum(c) FROM resident_daily_vitals, unnest(counts) AS c"


async def test_summarising_is_incremental_and_idempotent(db_url: str) -> None:
    await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        first = await summarise_days(conn, now=NOW, tz=TZ)
        again = await summarise_days(conn, now=NOW + timedelta(hours=1), tz=TZ)
        cur = await conn.execute(BINS)
        before = await cur.fetchone()
        # the next day becomes due once it ended an hour ago (the grace for late uploads)
        not_yet = await summarise_days(conn, now=NOW + timedelta(hours=15), tz=TZ)
        later = await summarise_days(conn, now=NOW + timedelta(hours=16), tz=TZ)
        cur = await conn.execute(BINS)
        after = await cur.fetchone()
    assert len(first) == 7
    assert again == []
    assert not_yet == []
    assert later == [date(2025, 3, 10)]
    assert before is not None
    assert after is not None
    assert after[1] > before[1]


def expected_routine(data: list[tuple[object, ...]], rid: int) -> timedelta | None:
    """Reference: each day's longest waking-hours still stretch (07-21 local: the residents'
    own window, learned from their days) between
    consecutive movements, counted in Python from the rows, then learn_threshold."""
    moves: list[datetime] = []
    last: int | None = None
    for at, _, _, r, *_rest, steps, _worn in data:
        if r != rid:
            continue
        assert isinstance(at, datetime)
        assert isinstance(steps, int)
        if last is not None and (steps > last or (steps < last and steps > 0)):
            moves.append(at)
        last = steps
    # the residents' own window, learned from their days: 07-21 local (waking.py)
    return routine_by_minutes(
        moves, window=(time(7), time(21)), zone=ZONE, days=(date(2025, 3, 3), date(2025, 3, 10))
    )


async def test_a_reload_in_chunks_and_by_shard_gives_the_same_baselines(db_url: str) -> None:
    await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        whole = await load_baselines(conn, now=NOW, days=7, tz=TZ)
        one_by_one = await load_baselines(conn, now=NOW, days=7, tz=TZ, chunk=1)
        halves = [await load_baselines(conn, now=NOW, days=7, tz=TZ, chunk=2, shard=Shard(k, 2))
                  for k in range(2)]  # fmt: skip
    assert set(whole) == {1, 2, 3}
    assert all(whole[r].day and whole[r].inactivity_routine for r in whole)
    assert one_by_one == whole
    assert set(halves[0]) == {2}
    assert set(halves[1]) == {1, 3}
    assert {**halves[0], **halves[1]} == whole


async def test_the_inactivity_routine_comes_from_the_daily_still_stretches(db_url: str) -> None:
    data = await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        got = await load_baselines(conn, now=NOW, days=7, tz=TZ)
        cur = await conn.execute(
            "SELECT still_from, still_to FROM resident_daily_activity"
            " WHERE resident_id = 1 AND day = %s",
            (ILL_DAY,),
        )
        ill = await cur.fetchone()
    assert ill is not None
    # the day keeps its 3 h sit (10:00-13:00 local) among its stretches of 30 min or more
    noon = datetime.combine(ILL_DAY, time(11, 30), ZONE)
    sit = [b - a for a, b in zip(*ill, strict=True) if a <= noon < b]
    assert len(sit) == 1
    assert timedelta(hours=3) <= sit[0] <= timedelta(hours=3, minutes=10)
    for rid in (1, 2, 3):
        want = expected_routine(data, rid)
        assert want is not None
        assert got[rid].inactivity_routine == want
        # active 07:00-21:00 every day: the personal window, so 21-22 h is not stillness
        assert got[rid].waking == (time(7, 0), time(21, 0))
    # the ill morning is within the 2 h floor x 1.5 rule
    assert got[1].inactivity_routine == timedelta(hours=2)


# What the summariser wrote before migration 014: one row per histogram bin.
_VITALS_BEFORE_014 = """
INSERT INTO resident_daily_vitals (resident_id, day, waking, param, value, n)
SELECT t.resident_id, %(day)s::date, t.time >= %(wake)s AND t.time < %(sleep)s,
       v.param, v.value, count(*)
FROM telemetry t
CROSS JOIN LATERAL (VALUES ('hr', t.hr::real), ('spo2', t.spo2::real), ('sbp', t.bp_sys::real),
                           ('temp', t.skin_temp_c)) AS v(param, value)
WHERE t.time >= %(start)s AND t.time < %(end)s
  AND t.resident_id IS NOT NULL AND t.worn IS NOT FALSE AND v.value IS NOT NULL
GROUP BY 1, 3, 4, 5
"""


async def test_migration_014_keeps_the_summarised_histograms_as_arrays() -> None:
    url = create_database()
    try:
        migrate(url, until=13)
        await seed(url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for d in range(3, 10):  # the days summarised before the upgrade
                day = date(2025, 3, d)
                start, end = local_day_bounds(day, TZ)
                wake, sleep = (
                    datetime.combine(day, time(h), ZONE).astimezone(UTC) for h in (7, 22)
                )
                await conn.execute(_VITALS_BEFORE_014, {"day": day, "start": start, "end": end,
                                                        "wake": wake, "sleep": sleep})  # fmt: skip
                await conn.execute(
                    "INSERT INTO daily_summary_days (day, tz, summarised_at, residents)"
                    " VALUES (%s, %s, %s, 3)",
                    (day, TZ, NOW),
                )
            cur = await conn.execute("SELECT count(*), sum(n) FROM resident_daily_vitals")
            before = await cur.fetchone()
        migrate(url)  # 014 converts the rows in place
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute(BINS)
            after = await cur.fetchone()
            cur = await conn.execute(
                "SELECT count(*) FROM resident_daily_vitals"
                " WHERE bins <> (SELECT array_agg(b ORDER BY b) FROM unnest(bins) AS b)"
            )
            unsorted = await cur.fetchone()
            converted = await load_baselines(conn, now=NOW, days=7, tz=TZ, summarise=False)
            since = local_day_bounds(date(2025, 3, 3), TZ)[0]
            until = local_day_bounds(date(2025, 3, 10), TZ)[0]
            raw = await scan_baselines(conn, since=since, until=until, tz=TZ)
    finally:
        drop_database(url)
    assert before is not None
    assert before[0] > 1000
    assert after == before  # every bin and reading kept
    assert unsorted == (0,)
    assert set(converted) == set(raw) == {1, 2, 3}
    for rid in raw:
        assert converted[rid].day == raw[rid].day
        assert converted[rid].night == raw[rid].night
