"""A band's own fall report, held for confirmation, survives a restart.

Nothing is stored while the engine holds a band-only report (``pending``), and
ingest acknowledged it when it stored the device event; a restart rebuilds the
hold from that event (:func:`alerts.restart_falls.with_held_reports`). From then
on the restarted engine must raise what an engine that ran throughout raises.
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import AlertType, ResidentState, Tick
from alerts.restart_falls import HeldReport, with_held_reports
from eldercare.protocol import DeviceEvent, EventType
from ingest.rows import Accepted
from tests.unit.test_fall_restart import (
    DEV,
    T0,
    Item,
    S,
    Store,
    im_ok,
    ms,
    raised,
    raised_across_downtime,
    restarted_at,
    run,
    tele,
)


def band_fall(at: datetime) -> Accepted:
    return Accepted(DeviceEvent(device_id=DEV, seq=0, ts=ms(at), type=EventType.FALL), 5)


def band_script(increments: list[int], ok_at_s: int | None) -> list[tuple[datetime, Item]]:
    """A band's fall report at T0 (no movement window), then a step counter every
    minute, a tick every 10 s and perhaps an "I'm OK" ``ok_at_s`` after the impact."""
    items: list[tuple[datetime, Item]] = [
        (T0 - 30 * S, tele(T0 - 30 * S, 1000)),
        (T0, band_fall(T0)),
    ]
    counter = 1000
    for minute in range(25):
        at = T0 + minute * 60 * S
        if minute:
            counter += increments[minute - 1] if minute - 1 < len(increments) else 0
            items.append((at, tele(at, counter)))
        items += [(at + k * 10 * S, Tick(at + k * 10 * S)) for k in range(1, 6)]
    if ok_at_s is not None:
        items.append((T0 + ok_at_s * S, im_ok(T0 + ok_at_s * S)))
    return sorted(items, key=lambda x: x[0])


def held_reports(items: list[tuple[datetime, Item]]) -> list[HeldReport]:
    """The band's latest fall report among ``items``, as ingest stored it (arrival time)."""
    falls = [(at, i.message) for at, i in items
             if isinstance(i, Accepted) and isinstance(i.message, DeviceEvent)
             and i.message.type is EventType.FALL]  # fmt: skip
    return [HeldReport(5, DEV, T0, at) for at, _ in falls[-1:]]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 8), max_size=24),
    st.one_of(st.none(), st.integers(1, 1400)),
    st.integers(1, 900),
    st.integers(1, 2400),
)
def test_a_restart_while_a_band_report_is_held_raises_what_running_on_would(
    increments: list[int], ok_at_s: int | None, down_at_s: int, down_s: int
) -> None:
    """The engine stops ``down_at_s`` after the report (inside its 30 s hold, or later)
    for ``down_s``; the band's reports meanwhile reach the database, the ticks are lost.
    The same alerts are raised (at the restart's ticks rather than on time)."""
    items = band_script(increments, ok_at_s)
    down_at, up_at = T0 + down_at_s * S, T0 + (down_at_s + down_s) * S
    got, continuous, _ = raised_across_downtime(items, down_at, up_at, held=held_reports)
    assert got == continuous


def test_a_held_report_lost_to_a_restart_is_raised_then_a_long_lie() -> None:
    items = band_script([], None)
    cut = next(k for k, (at, _) in enumerate(items) if at >= T0 + 10 * S)
    store = Store()
    _, before = run(items[:cut], ResidentState(), store)
    assert raised(before) == []  # held: nothing stored
    state, _ = restarted_at(store, [], now=T0 + 12 * S, held=held_reports(items[:cut]))
    _, after = run(items[cut:], state)
    assert [t for t, _ in raised(after)] == [AlertType.FALL, AlertType.LONG_LIE]


def test_a_report_the_running_engine_had_raised_is_not_held_again() -> None:
    items = band_script([], None)
    cut = next(k for k, (at, _) in enumerate(items) if at >= T0 + 45 * S)
    store = Store()
    _, before = run(items[:cut], ResidentState(), store)
    assert [t for t, _ in raised(before)] == [AlertType.FALL]
    state = with_held_reports({}, held_reports(items[:cut]), store.rows).get(5, ResidentState())
    assert state.falls.episode is None  # the stored fall alert accounts for it


def test_a_restart_after_a_held_report_was_raised_keeps_its_long_lie_on_time() -> None:
    """Raised 30 s after its clocks started: a restart ran them from the raise (30 s
    late) until the fall's detail said when they started."""
    items = band_script([], None)
    _, continuous = run(items, ResidentState())
    cut = next(k for k, (at, _) in enumerate(items) if at >= T0 + 5 * 60 * S)
    store = Store()
    _, before = run(items[:cut], ResidentState(), store)
    state, _ = restarted_at(store, [], now=items[cut][0])
    _, after = run(items[cut:], state)
    assert raised(before) + raised(after) == raised(continuous)
