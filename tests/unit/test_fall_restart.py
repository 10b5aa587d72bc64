"""A restart in the middle of a fall episode decides as the running engine would.

The detectors run over a script (an impact window the early model flags and the
full window's model does not confirm, then telemetry and ticks); at a random
point the state is thrown away and rebuilt from what the database would hold
(the alert events folded into stored rows, the band's reports as evidence), as
:mod:`alerts.engine` does at start. From then on both must raise the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from alerts.detectors import (
    AlertCleared,
    AlertEvent,
    AlertRaised,
    AlertType,
    Profile,
    ResidentState,
    Tick,
    step,
)
from alerts.detectors.falls import FallStage
from alerts.falls import load_model
from alerts.restart import seed_states
from alerts.restart_falls import (
    FallEvidence,
    HeldReport,
    fall_devices,
    with_alert_evidence,
    with_evidence,
    with_held_reports,
)
from alerts.store import StoredAlert
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, Telemetry
from ingest.rows import Accepted

T0 = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)  # 23:00 local: night
S = timedelta(seconds=1)
P = Profile(resident_id=5)
MODEL = load_model()
DEV = "wb-5"
Item = Accepted | Tick


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def knock_windows(*, lying: bool = False) -> tuple[ImuWindow, ImuWindow]:
    """An impact at T0 + 2.5 s turning the forearm, then the arm back and moving: the early
    part is suspected, the whole window is not a fall (tests/unit/test_detect_falls.py).
    ``lying``: the forearm stays still in its new posture, and the whole window confirms."""
    rng = np.random.default_rng(0)
    t = np.arange(0.0, 10.0, 1 / 50)
    before, after = np.array([-0.94, 0.12, 0.32]), np.array([0.15, -0.25, 0.95])
    acc = np.where((t < 2.5)[:, None], before, after)
    acc = acc + 4.0 * np.exp(-0.5 * ((t - 2.5) / 0.05) ** 2)[:, None] * after
    if not lying:
        moving = t > 3.3
        acc[moving] = before + 0.6 * np.sin(2 * np.pi * 2.0 * t[moving])[:, None] * [1, 0.3, 0.2]
    acc = acc + rng.normal(0.0, 0.01, acc.shape)

    def window(keep: np.ndarray, seq: int) -> ImuWindow:
        return ImuWindow(device_id=DEV, seq=seq, ts=ms(T0), t_ms=[round(x * 1000) for x in t[keep]],
                         ax=acc[keep, 0].tolist(), ay=acc[keep, 1].tolist(),
                         az=acc[keep, 2].tolist(), trigger="impact")  # fmt: skip

    return window(t <= 3.3, 1), window(t >= 0.0, 2)


def tele(at: datetime, steps: int | None, worn: bool = True, hr: int | None = None) -> Accepted:
    return Accepted(Telemetry(device_id=DEV, seq=0, ts=ms(at), steps=steps, worn=worn, hr=hr), 5)


def im_ok(at: datetime) -> Accepted:
    return Accepted(DeviceEvent(device_id=DEV, seq=0, ts=ms(at), type=EventType.IM_OK), 5)


class Store:
    """Alert events folded into stored rows, as alerts.store does (the parts restart reads)."""

    def __init__(self) -> None:
        self.rows: list[StoredAlert] = []

    def apply(self, events: list[AlertEvent]) -> None:
        for e in events:
            current = next((a for a in self.rows
                            if a.type == e.type and a.closed_at is None), None)  # fmt: skip
            if isinstance(e, AlertRaised) and current is None:
                self.rows.append(StoredAlert(
                    id=len(self.rows) + 1, resident_id=e.resident_id, device_id=e.device_id,
                    type=e.type.value, severity=e.severity.value, state="open", outcome=None,
                    opened_at=e.at, updated_at=e.at, closed_at=None, detail=dict(e.detail),
                    repeat_count=1,
                ))  # fmt: skip
            elif isinstance(e, AlertCleared):
                assert current is not None
                cleared = {**current.detail, "cleared": {"reason": e.reason.value}}
                closed = replace(current, state="false_alarm", closed_at=e.at, updated_at=e.at,
                                 detail=cleared)  # fmt: skip
                self.rows[self.rows.index(current)] = closed
            else:
                assert current is not None
                updated = replace(current, severity=e.severity.value, detail=dict(e.detail),
                                  updated_at=e.at)  # fmt: skip
                self.rows[self.rows.index(current)] = updated


def restarted(store: Store, reports: list[Accepted]) -> ResidentState:
    """What the engine rebuilds at start: seeded states, then the bands' reports since."""
    return restarted_at(store, reports, now=T0)[0]


def restarted_at(
    store: Store, reports: list[Accepted], *, now: datetime, held: Sequence[HeldReport] = ()
) -> tuple[ResidentState, list[AlertEvent]]:
    """:func:`restarted`, with the events the restart itself makes at ``now`` (a red heart
    rate reported while the engine was down), as alerts.evidence.restore_states does;
    ``held``: the band fall reports stored lately."""
    open_rows = [a for a in store.rows if a.closed_at is None]
    closed = [a for a in store.rows if a.closed_at is not None]
    states = seed_states(open_rows, recently_closed=closed)
    states = with_held_reports(states, held, store.rows)
    evidence: dict[str, FallEvidence] = {}
    for device_id, impact_at in fall_devices(states).items():
        tel = [r.message for r in reports if isinstance(r.message, Telemetry)]
        before = [t for t in tel if t.ts < ms(impact_at) and t.steps is not None][-1:]
        since = [t for t in tel if t.ts >= ms(impact_at)]
        oks = [r.message for r in reports if isinstance(r.message, DeviceEvent)
               and r.message.type is EventType.IM_OK and r.message.ts >= ms(impact_at)]  # fmt: skip
        evidence[device_id] = FallEvidence.from_reports(
            [(datetime.fromtimestamp(t.ts / 1000, UTC), t.steps, t.worn, t.hr)
             for t in before + since],
            [datetime.fromtimestamp(e.ts / 1000, UTC) for e in oks],
            impact_at,
        )  # fmt: skip
    states = with_evidence(states, evidence, {5: P})
    states, events = with_alert_evidence(states, evidence, {5: P}, now=now)
    return states.get(5, ResidentState()), events


def script(
    increments: list[int], ok_at_min: int | None, *, lying: bool = False, ok_at_s: int = 5
) -> list[tuple[datetime, Item]]:
    early, whole = knock_windows(lying=lying)
    items: list[tuple[datetime, Item]] = [
        (T0 - 30 * S, tele(T0 - 30 * S, 1000)),
        (T0 + 3.5 * S, Accepted(early, 5)),
        (T0 + 11 * S, Accepted(whole, 5)),
    ]
    counter = 1000
    if ok_at_min == 0:  # inside the cancel window
        items.append((T0 + ok_at_s * S, im_ok(T0 + ok_at_s * S)))
    for minute in range(1, 25):
        at = T0 + minute * 60 * S
        counter += increments[minute - 1] if minute - 1 < len(increments) else 0
        items.append((at, tele(at, counter)))
        items += [(at + k * 10 * S, Tick(at + k * 10 * S)) for k in range(1, 6)]
        if ok_at_min == minute:
            items.append((at + ok_at_s * S, im_ok(at + ok_at_s * S)))
    return sorted(items, key=lambda x: x[0])


def run(
    items: list[tuple[datetime, Item]], state: ResidentState, store: Store | None = None
) -> tuple[ResidentState, list[AlertEvent]]:
    out: list[AlertEvent] = []
    for now, item in items:
        state, events = step(P, state, item, now=now, fall_model=MODEL)
        if store is not None:
            store.apply(events)
        out += events
    return state, out


def raised(events: list[AlertEvent]) -> list[tuple[AlertType, datetime]]:
    return [(e.type, e.at) for e in events if isinstance(e, AlertRaised)]


def test_the_knock_is_screened_then_not_confirmed() -> None:
    state, events = run(script([], None)[:3], ResidentState())
    assert [(type(e).__name__, e.type) for e in events] == [
        ("AlertRaised", AlertType.FALL), ("AlertCleared", AlertType.FALL)
    ]  # fmt: skip
    assert state.falls.episode is not None
    assert state.falls.episode.stage is FallStage.UNCONFIRMED


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 8), max_size=24),
    st.one_of(st.none(), st.integers(1, 24)),
    st.integers(3, 140),
)
def test_a_restart_raises_the_same_alerts_as_running_on(
    increments: list[int], ok_at_min: int | None, cut: int
) -> None:
    items = script(increments, ok_at_min)
    cut = min(cut, len(items))
    _, continuous = run(items, ResidentState())
    store = Store()
    _, before = run(items[:cut], ResidentState(), store)
    reports = [i for _, i in items[:cut] if isinstance(i, Accepted)]
    _, after = run(items[cut:], restarted(store, reports))
    assert raised(before) + raised(after) == raised(continuous)


def test_a_watch_rebuilt_after_the_long_lie_was_due_raises_it_at_the_next_tick() -> None:
    items = script([], None)
    store = Store()
    run(items[:3], ResidentState(), store)  # screened, not confirmed; then the engine is down
    reports = [i for _, i in items[:3] if isinstance(i, Accepted)]
    state = restarted(store, reports)
    later = T0 + 30 * 60 * S
    _, events = step(P, state, Tick(later), now=later)
    assert raised(events) == [(AlertType.LONG_LIE, later)]


def test_walking_while_the_engine_was_down_ends_the_rebuilt_watch() -> None:
    items = script([], None)
    store = Store()
    run(items[:3], ResidentState(), store)
    # the first report after the impact is the base (its steps span the impact), then 40
    walked = [tele(T0 + 60 * S, 1000), tele(T0 + 120 * S, 1040)]
    reports = [i for _, i in items[:3] if isinstance(i, Accepted)] + walked
    state = restarted(store, reports)
    assert state.last_steps == {DEV: 1040}
    later = T0 + 30 * 60 * S
    state, events = step(P, state, Tick(later), now=later)
    assert events == []
    assert state.falls.episode is None


def test_steps_in_the_report_that_spans_the_impact_are_not_getting_up() -> None:
    """Walking *into* the fall: the first report after the impact holds steps walked
    before it, so at a restart as in a running engine they do not end the watch."""
    items = script([], None)
    store = Store()
    run(items[:3], ResidentState(), store)
    spanning = [tele(T0 + 60 * S, 1040)]  # 40 steps, some or all of them before the fall
    state = restarted(store, [i for _, i in items[:3] if isinstance(i, Accepted)] + spanning)
    later = T0 + 30 * 60 * S
    _, events = step(P, state, Tick(later), now=later)
    assert raised(events) == [(AlertType.LONG_LIE, later)]


def test_reports_redelivered_after_a_restart_older_than_its_counter_are_not_walking() -> None:
    """The wearer shuffled 5 steps (not getting up) while the engine was down; the broker's
    queued batches arrive after the restart, older than the counter it seeded. Their
    lower count is not the counter's midnight restart: before 2026-12-04 it made 1,000
    phantom steps, the watch ended as walking and the long lie was never raised."""
    items = script([], None)
    store = Store()
    run(items[:3], ResidentState(), store)
    downtime = [tele(T0 + 60 * S, 1000), tele(T0 + 120 * S, 1005)]
    state = restarted(store, [i for _, i in items[:3] if isinstance(i, Accepted)] + downtime)
    assert (state.last_steps, state.steps_at) == ({DEV: 1005}, {DEV: ms(T0 + 120 * S)})
    state, _ = run([(T0 + 150 * S + k * S, r) for k, r in enumerate(downtime)], state)
    assert state.falls.episode is not None
    later = T0 + 30 * 60 * S
    _, events = step(P, state, Tick(later), now=later)
    assert (AlertType.LONG_LIE, later) in raised(events)  # (and the band silent since: offline)


def test_an_operator_closing_the_long_lie_ends_the_episode_for_good() -> None:
    items = script([], None)
    store = Store()
    _, events = run(items, ResidentState(), store)  # still throughout: a long lie
    assert [t for t, _ in raised(events)] == [AlertType.FALL, AlertType.LONG_LIE]
    lie = next(a for a in store.rows if a.type == AlertType.LONG_LIE)
    store.rows[store.rows.index(lie)] = replace(lie, state="resolved", closed_at=T0 + 20 * 60 * S)
    reports = [i for _, i in items if isinstance(i, Accepted)]
    assert restarted(store, reports) == ResidentState()


def test_the_band_taken_off_the_wrist_ends_the_watch() -> None:
    items = script([], None)[:3]
    off = T0 + 90 * S
    state, _ = run([*items, (off, tele(off, 1000, worn=False))], ResidentState())
    assert state.falls.episode is None
    _, events = step(P, state, Tick(T0 + 30 * 60 * S), now=T0 + 30 * 60 * S)
    assert AlertType.LONG_LIE not in [t for t, _ in raised(events)]  # (the band went silent)


# -- a red heart rate reported while the engine was down --------------------------------

DOWN_UNTIL = T0 + 10 * 60 * S  # the engine restarts 10 min after the impact


def screened_then_down(downtime: list[Accepted]) -> tuple[ResidentState, list[AlertEvent]]:
    """The knock screened and not confirmed while running; ``downtime``'s reports arrive
    while the engine is down; the restart at ``DOWN_UNTIL``."""
    items = script([], None)[:3]
    store = Store()
    run(items, ResidentState(), store)
    reports = [i for _, i in items if isinstance(i, Accepted)] + downtime
    return restarted_at(store, reports, now=DOWN_UNTIL)


def fall_raised(events: list[AlertEvent]) -> list[AlertRaised]:
    return [e for e in events if isinstance(e, AlertRaised) and e.type is AlertType.FALL]


def test_a_red_heart_rate_while_down_shows_the_unconfirmed_fall_again_as_live() -> None:
    reading = [tele(T0 + 60 * S, 1000), tele(T0 + 120 * S, 1000, hr=36)]
    state, events = screened_then_down(reading)
    [fall] = fall_raised(events)
    assert fall.severity.value == "critical"
    assert fall.detail["heart_rate_after"] == {"bpm": 36, "at": "2025-03-01T15:02:00Z"}
    # the running engine, given the same two reports, shows the same alert
    live, live_events = run([(r_at, r) for r_at, r in zip((T0 + 60 * S, T0 + 120 * S), reading,
                                                           strict=True)],
                            run(script([], None)[:3], ResidentState())[0])  # fmt: skip
    [live_fall] = fall_raised(live_events)
    assert (live_fall.severity, live_fall.detail) == (fall.severity, fall.detail)
    assert state.falls.episode == live.falls.episode
    # from then on, the long lie comes on the original clock, as it would have
    later = T0 + 30 * 60 * S
    _, after = step(P, state, Tick(later), now=later)
    assert raised(after) == [(AlertType.LONG_LIE, later)]


def test_a_heart_rate_outside_the_red_band_changes_nothing_at_a_restart() -> None:
    state, events = screened_then_down([tele(T0 + 60 * S, 1000), tele(T0 + 120 * S, 1000, hr=118)])
    assert events == []
    assert state.falls.episode is not None
    assert state.falls.episode.stage is FallStage.UNCONFIRMED


def test_i_am_ok_before_the_red_reading_had_ended_the_watch() -> None:
    downtime = [tele(T0 + 60 * S, 1000), im_ok(T0 + 90 * S), tele(T0 + 120 * S, 1000, hr=36)]
    state, events = screened_then_down(downtime)
    assert events == []
    assert state.falls.episode is None


def test_i_am_ok_after_the_red_reading_is_recorded_not_a_cancel() -> None:
    downtime = [tele(T0 + 60 * S, 1000), tele(T0 + 120 * S, 1000, hr=36), im_ok(T0 + 150 * S)]
    state, events = screened_then_down(downtime)
    [fall] = fall_raised(events)
    assert fall.detail["heart_rate_after"] == {"bpm": 36, "at": "2025-03-01T15:02:00Z"}
    assert [e.detail["wearer_says_ok"] for e in events if e.type is AlertType.FALL] == [
        False,
        True,
    ]  # raised, then the press recorded on it
    assert AlertType.FALL in state.falls.open


def test_walking_away_before_the_red_reading_had_ended_the_watch() -> None:
    downtime = [tele(T0 + 60 * S, 1000), tele(T0 + 120 * S, 1100), tele(T0 + 180 * S, 1100, hr=150)]
    state, events = screened_then_down(downtime)
    assert events == []
    _, after = step(P, state, Tick(DOWN_UNTIL), now=DOWN_UNTIL)
    assert after == []


def test_a_long_lie_open_gains_the_heart_rate_as_live_and_only_once() -> None:
    """Unconfirmed fall, then a long lie shown; a red reading arrives while the engine is
    down: the restart makes the events the running engine would have made (the fall is
    shown again, the long lie gains the reading); a second restart adds nothing."""
    items = script([], None)
    store = Store()
    state, _ = run(items, ResidentState(), store)
    red_at = T0 + 25 * 60 * S
    red = tele(red_at, 1000, hr=38)
    _, live = run([(red_at, red)], state)
    reports = [i for _, i in items if isinstance(i, Accepted)]
    _, events = restarted_at(store, [*reports, red], now=red_at)
    assert [(type(e).__name__, e.type, e.severity, e.detail) for e in events] == [
        (type(e).__name__, e.type, e.severity, e.detail) for e in live
    ]
    assert {(type(e).__name__, e.type) for e in events} == {
        ("AlertRaised", AlertType.FALL),
        ("AlertUpdated", AlertType.LONG_LIE),
    }
    assert all(e.detail["heart_rate_after"]["bpm"] == 38 for e in events)
    store.apply(events)
    _, again = restarted_at(store, [*reports, red], now=red_at + 60 * S)
    assert again == []


def test_i_am_ok_after_the_long_lie_fell_due_while_down_is_recorded_on_it() -> None:
    """The long lie fell due at 10 min while the engine was down, "I'm OK" came at 12:
    as in a running engine, the long lie is raised (at the next tick) and carries the
    press; it does not end the watch."""
    items = script([], 12)
    store = Store()
    run(items[:3], ResidentState(), store)
    reports = [i for at, i in items if isinstance(i, Accepted) and at < T0 + 13 * 60 * S]
    state, events = restarted_at(store, reports, now=T0 + 13 * 60 * S)
    assert events == []
    later = T0 + 13 * 60 * S
    _, after = step(P, state, Tick(later), now=later)
    assert raised(after) == [(AlertType.LONG_LIE, later)]
    [lie] = [e for e in after if isinstance(e, AlertRaised)]
    assert lie.detail["wearer_says_ok"] is True
    _, live = run(items, ResidentState())
    assert [e.type for e in live if isinstance(e, AlertRaised)] == [
        AlertType.FALL,
        AlertType.LONG_LIE,
    ]


def test_i_am_ok_inside_the_cancel_window_while_down_cancels_the_fall_at_start() -> None:
    """A fall shown at once and confirmed by the whole window; the engine goes down at
    12 s and "I'm OK" comes at 20 s, inside the 45 s window: the restart cancels it, as
    the running engine did, and no long lie follows."""
    items = script([], 0, lying=True, ok_at_s=20)
    store = Store()
    run([x for x in items if x[0] < T0 + 12 * S], ResidentState(), store)
    assert [(a.type, a.closed_at) for a in store.rows] == [(AlertType.FALL, None)]
    reports = [i for at, i in items if isinstance(i, Accepted) and at < T0 + 60 * S]
    state, events = restarted_at(store, reports, now=T0 + 60 * S)
    assert [(type(e).__name__, e.type) for e in events] == [("AlertCleared", AlertType.FALL)]
    assert state.falls.episode is None
    _, after = run([x for x in items if x[0] >= T0 + 60 * S], state)
    assert raised(after) == []
    _, live = run(items, ResidentState())
    assert [type(e).__name__ for e in live] == ["AlertRaised", "AlertUpdated", "AlertCleared"]


@settings(max_examples=100, deadline=None)
@given(
    st.booleans(),
    st.lists(st.integers(0, 8), max_size=24),
    st.tuples(st.one_of(st.none(), st.just(0), st.integers(1, 24)), st.integers(12, 55)),
    st.tuples(st.integers(1, 24), st.sampled_from([36, 36, 80, 150])),
    st.tuples(st.one_of(st.integers(0, 40), st.integers(0, 1440)), st.integers(10, 2400)),
)
def test_a_downtime_with_any_heart_rate_raises_the_same_alerts_as_running_on(
    lying: bool,
    increments: list[int],
    ok: tuple[int | None, int],
    reading: tuple[int, int],
    outage: tuple[int, int],
) -> None:
    """A knock (not confirmed) or a fall (``lying``: confirmed), then the engine down for
    a while after the whole window's decision (the reports meanwhile reach the database,
    the ticks are lost), restarted at the next item: the same alerts are raised as by an
    engine that ran throughout, "I'm OK" (inside the cancel window or later) and a red
    heart rate included (at the restart's time instead of the reading's, so compared
    without times)."""
    (hr_at_min, bpm), (down_at_s, down_s), (ok_at_min, ok_at_s) = reading, outage, ok
    items = script(increments, ok_at_min, lying=lying, ok_at_s=ok_at_s)
    hr_at = T0 + hr_at_min * 60 * S + 20 * S
    items = sorted([*items, (hr_at, tele(hr_at, None, hr=bpm))], key=lambda x: x[0])
    down_at = T0 + 12 * S + down_at_s * S  # after the whole window's decision
    got, continuous, at_start = raised_across_downtime(items, down_at, down_at + down_s * S)
    event(f"events at the restart: {at_start}")
    assert got == continuous


def raised_across_downtime(
    items: list[tuple[datetime, Item]],
    down_at: datetime,
    up_at: datetime,
    *,
    held: Callable[[list[tuple[datetime, Item]]], Sequence[HeldReport]] = lambda _: (),
) -> tuple[list[str], list[str], bool]:
    """The alert types raised (sorted) by an engine down from ``down_at`` to ``up_at``
    (the reports meanwhile reach the database, the ticks are lost; restarted at the next
    item), and by one that ran throughout; and whether the restart itself made events.
    ``held``: the band fall reports stored before the stop (of the items before it)."""
    cut = next(k for k, (at, _) in enumerate(items) if at >= down_at)
    back = next((k for k, (at, _) in enumerate(items) if at >= up_at), len(items) - 1)
    _, continuous = run(items, ResidentState())
    store = Store()
    _, before = run(items[:cut], ResidentState(), store)
    reports = [i for _, i in items[:back] if isinstance(i, Accepted)]
    state, at_start = restarted_at(store, reports, now=items[back][0], held=held(items[:cut]))
    store.apply(at_start)
    _, after = run(items[back:], state)
    got = sorted(t.value for t, _ in raised(before) + raised(at_start) + raised(after))
    return got, sorted(t.value for t, _ in raised(continuous)), bool(at_start)
