"""dispatch.throttle: a burst at once, then a steady allowance, per key."""

from __future__ import annotations

from dispatch.throttle import Throttle


def test_a_burst_is_heard_then_one_a_second() -> None:
    t = Throttle(burst=3, per_s=1.0)
    assert [t.allow("W1/answers", 0.0) for _ in range(5)] == [True, True, True, False, False]
    assert not t.allow("W1/answers", 0.5)  # half a token back
    assert t.allow("W1/answers", 1.01)
    assert not t.allow("W1/answers", 1.02)
    assert [t.allow("W1/answers", 100.0) for _ in range(4)] == [True, True, True, False]


def test_keys_are_apart_and_a_dropped_message_earns_nothing() -> None:
    t = Throttle(burst=1, per_s=0.5)
    assert t.allow("W1/answers", 0.0)
    assert t.allow("W2/answers", 0.0)
    assert t.allow("W1/status", 0.0)
    # a phone that keeps sending while throttled is heard at the steady rate, no slower
    heard = sum(t.allow("W1/answers", k * 0.01) for k in range(1, 1051))
    assert heard == 5  # 10.5 s at 0.5 a second, from an empty bucket


def test_too_many_keys_start_over_with_full_buckets() -> None:
    t = Throttle(burst=1, per_s=0.0, max_keys=2)
    assert t.allow("a", 0.0)
    assert t.allow("b", 0.0)
    assert not t.allow("a", 0.0)
    assert t.allow("c", 0.0)  # a third key: forgotten and started over
    assert t.allow("a", 0.0)
