"""A platform outage is not every band's: while the engine hears nothing from ingest,
and until each band has had its own offline limit since the feed came back, a band's
silence raises and clears nothing. Before 2026-12-04 a ten-minute broker outage raised
``device_offline`` for every band in the city at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import ResidentState, Tick, step
from alerts.detectors.types import AlertCleared, AlertRaised, AlertType, Profile
from alerts.feed import MIN_RESIDENTS, SILENCE, FeedWatch
from eldercare.protocol import Telemetry
from ingest.rows import Accepted

T0 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
M = timedelta(minutes=1)
P = Profile(resident_id=9, expected_interval_s=60)  # offline after 3 x 60 s + 2 min = 5 min


def reading(at: datetime) -> Accepted:
    ms = int(at.timestamp() * 1000)
    return Accepted(Telemetry(device_id="wb-9", seq=0, ts=ms, hr=70), 9)


def offline_events(state: ResidentState, now: datetime, feed_since: datetime | None) -> list:
    _, events = step(P, state, Tick(now, feed_since=feed_since), now=now)
    return [e for e in events if e.type is AlertType.DEVICE_OFFLINE]


def test_a_band_silent_through_an_outage_is_judged_only_after_the_feed_is_back() -> None:
    state, _ = step(P, ResidentState(), reading(T0), now=T0)
    # ten minutes later, the feed having been back for one minute: not judged yet
    now = T0 + 10 * M
    assert offline_events(state, now, feed_since=now - M) == []
    # its own limit (5 min) after the feed came back, and still silent: offline
    raised = offline_events(state, now + 5 * M, feed_since=now - M)
    assert [type(e) for e in raised] == [AlertRaised]
    # without the feed's state (a small deployment), as before: offline at once
    assert [type(e) for e in offline_events(state, now, feed_since=None)] == [AlertRaised]


def test_an_open_offline_alert_is_neither_cleared_nor_raised_again_in_doubt() -> None:
    state, _ = step(P, ResidentState(), reading(T0), now=T0)
    state, events = step(P, state, Tick(T0 + 6 * M), now=T0 + 6 * M)
    assert [type(e) for e in events] == [AlertRaised]
    # the feed goes silent (or restarts): the open alert stays as it is
    now = T0 + 20 * M
    kept, events = step(P, state, Tick(now, feed_since=now), now=now)
    assert events == []
    assert AlertType.DEVICE_OFFLINE in kept.open_alerts()
    assert not [e for e in events if isinstance(e, AlertCleared)]


def test_the_watch_knows_when_the_feed_runs() -> None:
    watch = FeedWatch(started=T0)
    many = MIN_RESIDENTS
    assert watch.feed_since(T0 + M, many) == T0  # since the start, until a batch
    assert watch.feed_since(T0 + SILENCE + M, many) == T0 + SILENCE + M  # nothing at all
    watch.heard(T0 + 3 * M)
    watch.heard(T0 + 4 * M)
    assert watch.feed_since(T0 + 5 * M, many) == T0 + 3 * M  # unbroken since
    assert watch.feed_since(T0 + 4 * M + SILENCE + M, many) == T0 + 4 * M + SILENCE + M
    watch.heard(T0 + 20 * M)  # back after a gap: it restarts there
    assert watch.feed_since(T0 + 21 * M, many) == T0 + 20 * M
    assert watch.feed_since(T0 + 21 * M, many - 1) is None  # a pilot's few bands


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 600), min_size=1, max_size=30))
def test_the_feed_is_unbroken_since_the_first_batch_after_the_last_long_gap(
    gaps_s: list[int],
) -> None:
    watch, at, since = FeedWatch(started=T0), T0, None
    for g in gaps_s:
        previous = at
        at += timedelta(seconds=g)
        if since is None or at - previous > SILENCE:
            since = at
        watch.heard(at)
    assert watch.feed_since(at, MIN_RESIDENTS) == since
