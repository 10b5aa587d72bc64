"""Who may be asked again for an emergency everyone nearby declined (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch.declines import Decline, gone_quiet, still_excluded
from dispatch.emergency import EmergencyPolicy

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
POLICY = EmergencyPolicy()  # a time-out cools down 60 s, a reject 10 minutes


def ago(s: float) -> datetime:
    return NOW - timedelta(seconds=s)


def test_a_time_out_cools_down_briefly_a_reject_longer() -> None:
    declines = [
        Decline("MISSED", "timed_out", ago(61)),
        Decline("JUST_MISSED", "timed_out", ago(10)),
        Decline("SAID_NO", "rejected", ago(300)),
        Decline("SAID_NO_LONG_AGO", "rejected", ago(601)),
        Decline("DROPPED", "failed", ago(120)),
    ]
    declined = [d.worker_id for d in declines]
    cooling = still_excluded(declined, declines, now=NOW, policy=POLICY)
    assert cooling == {"JUST_MISSED", "SAID_NO", "DROPPED"}


def test_the_longest_cool_down_of_a_workers_declines_holds() -> None:
    declines = [Decline("W1", "rejected", ago(120)), Decline("W1", "timed_out", ago(90))]
    assert still_excluded(["W1"], declines, now=NOW, policy=POLICY) == {"W1"}
    assert still_excluded(["W1"], declines, now=NOW + timedelta(minutes=9), policy=POLICY) == set()


def test_a_decline_with_no_date_stays_excluded() -> None:
    assert still_excluded(["W1"], [], now=NOW, policy=POLICY) == {"W1"}


def test_a_worker_has_gone_quiet_after_two_missed_emergencies_and_nothing_else() -> None:
    t0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    missed = [("timed_out", t0 + timedelta(minutes=3)), ("timed_out", t0)]  # newest first
    assert gone_quiet(missed, None)
    assert gone_quiet(missed, t0 - timedelta(hours=1))  # last heard before the first miss
    assert not gone_quiet(missed, t0 + timedelta(minutes=1))  # a position in between
    assert not gone_quiet(missed[:1], None)  # one miss is a missed call
    assert not gone_quiet([missed[0], ("rejected", t0)], None)  # a no is an answer
    assert not gone_quiet([("accepted", t0 + timedelta(minutes=3)), *missed], None)
