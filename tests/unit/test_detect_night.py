"""Night-time activity: per-night totals, the personal threshold, the live detector."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from alerts.baselines import NIGHT_S, night_baselines
from alerts.detectors import AlertClosed, ResidentState, step
from alerts.detectors.night_activity import (
    FLOOR_STEPS,
    NightActivityState,
    NightPart,
    learn_night_threshold,
    night_of,
    night_start,
    night_totals,
    steps_in,
)
from alerts.detectors.night_activity import step as night_step
from alerts.detectors.types import (
    AlertEvent,
    AlertRaised,
    AlertType,
    AlertUpdated,
    NightActivityBaseline,
    Profile,
    Severity,
)
from alerts.restart_night import NightEvidence, with_night
from eldercare.protocol import Telemetry
from ingest.rows import Accepted

# 2025-03-01 14:00 UTC is 22:00 Asia/Shanghai: the night of 2025-03-02 begins
EVENING = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
NIGHT_D = date(2025, 3, 2)
M = timedelta(minutes=1)
USUAL = NightActivityBaseline(threshold=400, median=150.0, nights=7)
P = Profile(resident_id=4, night_activity=USUAL)
COVERED = NightPart(0, 4 * 3600.0)


def test_a_night_joins_the_evening_before_and_the_morning_after() -> None:
    d1, d2, d3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)
    parts = {
        d1: (NightPart(999, 25200.0), NightPart(40, 7200.0)),
        d2: (NightPart(100, 25200.0), NightPart(5, 7200.0)),
        d3: (NightPart(70, 25200.0), NightPart(0, 0.0)),
    }
    got = night_totals(parts, night_s=NIGHT_S)
    assert got == {d1: None, d2: 140, d3: 75}  # d1: its evening before is unknown


def test_a_night_the_band_mostly_missed_is_unknown_not_zero() -> None:
    d1, d2, d3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 4)
    half = NIGHT_S / 2
    parts = {
        d1: (NightPart(0, 0.0), NightPart(0, 3600.0)),
        d2: (NightPart(0, half - 3600.0 - 1), NightPart(0, 0.0)),  # charged overnight
        d3: (NightPart(10, 25200.0), NightPart(0, 7200.0)),  # the day before it is missing
    }
    assert night_totals(parts, night_s=NIGHT_S) == {d1: None, d2: None, d3: None}
    parts[d2] = (NightPart(0, half - 3600.0), NightPart(0, 0.0))
    assert night_totals(parts, night_s=NIGHT_S)[d2] == 0  # half covered: a known, still night


def test_the_threshold_needs_five_known_nights_and_has_a_floor() -> None:
    assert learn_night_threshold([10, 20, None, 30, 40, None, None]) is None
    quiet = learn_night_threshold([0, 10, 0, 20, 0, None, 5])
    assert quiet == NightActivityBaseline(FLOOR_STEPS, 2.5, 6)  # toilet trips: the floor
    usual = learn_night_threshold([300, 320, 280, 310, 290, 305, 295])
    assert usual is not None
    assert usual.threshold == 600  # twice the median night
    wide = learn_night_threshold([100, 900, 200, 800, 500, 300, 700])
    assert wide is not None
    assert wide.threshold == round(500 + 4 * 1.4826 * 300)  # median + 4 robust SD (MAD 300)


@given(st.lists(st.one_of(st.none(), st.integers(0, 5000)), min_size=7, max_size=7))
def test_the_threshold_is_at_least_the_floor_and_twice_the_median(
    nights: list[int | None],
) -> None:
    got = learn_night_threshold(nights)
    known = [n for n in nights if n is not None]
    if len(known) < 5:
        assert got is None
        return
    assert got is not None
    assert got.threshold >= max(FLOOR_STEPS, 2 * statistics.median(known)) - 0.5
    assert got.nights == len(known)
    assert got.median == statistics.median(known)


def test_usual_nights_come_from_the_seven_nights_before_today() -> None:
    today = date(2025, 3, 10)
    full = (25200.0, 7200.0)
    rows = [(1, today - timedelta(days=i), 100 + i, full[0], 10, full[1]) for i in range(1, 9)]
    rows += [(2, today - timedelta(days=i), 500, full[0], 0, full[1]) for i in range(1, 5)]
    got = night_baselines(rows, today=today)
    assert set(got) == {1}  # resident 2: 3 known nights
    assert got[1].nights == 7
    assert got[1].median == 10 + 100 + 4  # nights ending 7..1 days ago: morning 101..107
    assert got[1].threshold == FLOOR_STEPS


def test_nights_are_named_by_their_morning() -> None:
    assert night_of(EVENING - M, P) is None
    assert night_of(EVENING, P) == NIGHT_D
    assert night_of(EVENING + 3 * 60 * M, P) == NIGHT_D  # 01:00
    assert night_of(EVENING + 9 * 60 * M - M, P) == NIGHT_D  # 06:59
    assert night_of(EVENING + 9 * 60 * M, P) is None  # 07:00
    assert night_start(NIGHT_D, P) == EVENING


def test_steps_in_counts_like_the_engine_across_midnight() -> None:
    # one band: counter 900 at 23:50, restarts at midnight, 30 at 00:10; one off-wrist report
    reports: list[tuple[str, datetime, int | None, bool | None]] = [
        ("a", EVENING - 30 * M, 850, True),  # before the night: only the base
        ("a", EVENING + 10 * M, 870, True),  # 20
        ("a", EVENING + 110 * M, 900, None),  # 30 (worn unknown counts)
        ("a", EVENING + 130 * M, 30, True),  # 30: the counter restarted at midnight
        ("a", EVENING + 140 * M, 80, False),  # off the wrist: not counted
        ("a", EVENING + 150 * M, None, True),  # no counter: nothing
        ("a", EVENING + 160 * M, 90, True),  # 10
        ("b", EVENING + 20 * M, 7, True),  # a second band's first report: only the base
        ("b", EVENING + 30 * M, 12, True),  # 5
    ]
    reports.sort(key=lambda r: r[1])
    assert steps_in(reports, EVENING, EVENING + 9 * 60 * M) == 20 + 30 + 30 + 10 + 5


def tele(at: datetime, steps: int, worn: bool | None = True, rid: int = 4) -> Accepted:
    t = Telemetry(device_id="wb-4", seq=0, ts=int(at.timestamp() * 1000), steps=steps, worn=worn)
    return Accepted(t, rid)


def walk(profile: Profile, counters: list[tuple[datetime, int, bool | None]],
         state: ResidentState | None = None) -> tuple[ResidentState, list[AlertEvent]]:  # fmt: skip
    state = state or ResidentState()
    out: list[AlertEvent] = []
    for at, steps, worn in counters:
        state, evs = step(profile, state, tele(at, steps, worn), now=at)
        out += [e for e in evs if e.type is AlertType.NIGHT_ACTIVITY]
    return state, out


def test_one_alert_when_tonight_passes_the_threshold_with_the_usual_night() -> None:
    counters = [(EVENING + i * 10 * M, 100 * i, True) for i in range(8)]  # 100 per report
    state, events = walk(P, counters)
    assert len(events) == 1
    raised = events[0]
    assert isinstance(raised, AlertRaised)
    assert raised.severity is Severity.LOW
    assert raised.at == EVENING + 50 * M  # 500 steps > 400
    assert raised.detail["steps_tonight"] == 500
    assert raised.detail["threshold_steps"] == 400
    assert raised.detail["usual_night_steps"] == 150.0
    assert raised.detail["night_of"] == "2025-03-02"
    # it stays open into the day (a morning follow-up): not cleared at waking start
    morning = EVENING + 9 * 60 * M + M
    state, events = walk(P, [(morning, 900, True), (morning + 60 * M, 1500, True)], state)
    assert events == []
    assert AlertType.NIGHT_ACTIVITY in state.open_alerts()


def test_dementia_makes_it_medium_and_no_baseline_means_no_alert() -> None:
    counters = [(EVENING + i * 10 * M, 300 * i, True) for i in range(8)]
    _, events = walk(Profile(4, conditions=frozenset({"dementia"}), night_activity=USUAL),
                     counters)  # fmt: skip
    assert [e.severity for e in events] == [Severity.MEDIUM]
    assert walk(Profile(4), counters)[1] == []


def test_steps_off_the_wrist_and_by_day_do_not_count() -> None:
    off = [(EVENING + i * 10 * M, 300 * i, False) for i in range(8)]
    assert walk(P, off)[1] == []
    day = [(EVENING - 120 * M + i * 10 * M, 300 * i, True) for i in range(13)]  # 20:00-22:00
    state, events = walk(P, day)
    assert events == []
    assert state.night.steps == 300  # only the report at 22:00 (its steps belong to its time)


def test_an_operator_close_ends_it_for_that_night_and_the_next_night_raises_again() -> None:
    counters = [(EVENING + i * 10 * M, 100 * i, True) for i in range(8)]
    state, events = walk(P, counters)
    state, _ = step(P, state, AlertClosed(AlertType.NIGHT_ACTIVITY), now=EVENING + 80 * M)
    later = [(EVENING + (80 + i * 10) * M, 800 + 200 * i, True) for i in range(5)]
    state, events = walk(P, later, state)
    assert events == []
    next_night = [(EVENING + 24 * 60 * M + i * 10 * M, 100 * i, True) for i in range(8)]
    state, events = walk(P, next_night, state)
    assert [type(e) for e in events] == [AlertRaised]


def test_a_second_restless_night_updates_the_alert_still_open() -> None:
    counters = [(EVENING + i * 10 * M, 100 * i, True) for i in range(8)]
    state, first = walk(P, counters)
    state, second = walk(P, [(t + timedelta(days=1), s, w) for t, s, w in counters], state)
    assert [type(e) for e in first + second] == [AlertRaised, AlertUpdated]
    assert second[0].detail["night_of"] == "2025-03-03"


def test_a_late_report_of_a_night_already_over_is_ignored() -> None:
    s = NightActivityState(NIGHT_D + timedelta(days=1), 50)
    got, events = night_step(s, P, delta=900, worn=True, observed_at=EVENING + 60 * M,
                             device_id="wb-4", now=EVENING + 25 * 60 * M)  # fmt: skip
    assert (got, events) == (s, [])


@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(0, 120), st.booleans()), max_size=60),
    st.integers(1, 1500),
)
def test_raised_once_iff_tonights_worn_steps_pass_the_threshold(
    reports: list[tuple[int, int, bool]], threshold: int
) -> None:
    """Reports every 1-30 min through one night (stopping at 07:00), new steps and worn."""
    profile = Profile(4, night_activity=NightActivityBaseline(threshold, 100.0, 7))
    at, counter, counted, crossed_at = EVENING, 0, 0, None
    counters = [(at, 0, True)]
    for gap, new, worn in reports:
        at += gap * M
        if at >= EVENING + 9 * 60 * M:
            break
        counter += new
        counted += new if worn else 0
        counters.append((at, counter, worn))
        if crossed_at is None and counted > threshold:
            crossed_at = at
    _, events = walk(profile, counters)
    if crossed_at is None:
        assert events == []
    else:
        assert [(type(e), e.at) for e in events] == [(AlertRaised, crossed_at)]


def test_readings_queued_while_down_older_than_the_seeded_counter_add_no_steps() -> None:
    """A restart at 23:05:30 seeds tonight's 5 steps and the band's counter, 6065 at 23:05;
    the batches the broker kept while the engine was down (23:01-23:05: 6061-6065) arrive
    after it. They are late, not the counter's midnight restart: before 2026-12-04 each
    added the day's whole count (6,000 phantom night steps, night_activity at once)."""
    evidence = NightEvidence(NIGHT_D, 5, {"wb-4": (6065, EVENING + 65 * M)})
    seeded = with_night({4: ResidentState()}, {4: evidence})[4]
    assert seeded.steps_at == {"wb-4": int((EVENING + 65 * M).timestamp() * 1000)}
    queued = [(EVENING + (60 + k) * M, 6060 + k, True) for k in range(1, 6)]
    state, events = walk(P, queued, seeded)
    assert (events, state.night.steps) == ([], 5)
    state, events = walk(P, [(EVENING + 70 * M, 6070, True)], state)  # the next new report
    assert (events, state.night.steps) == ([], 10)
