"""How often one phone is heard on a topic (pure: the time is passed in).

A token bucket per key: ``burst`` messages at once, then ``per_s`` a second. A
phone's answers and status changes come a few an hour; a phone back online after
a while flushes what it queued, a handful. A phone sending thousands (a defect, a
stolen credential) would otherwise cost a database write each, on the one stream
that also carries the alerts: an emergency behind 5,000 of them waited seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Throttle:
    """``allow(key, now)``: whether one more message of ``key`` is heard at ``now``
    (seconds, monotonic). At most ``max_keys`` keys are remembered; beyond that it
    starts over, every key with a full bucket, which can only let more through."""

    burst: float
    per_s: float
    max_keys: int = 100_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, key: str, now: float) -> bool:
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.per_s)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._buckets.clear()
        self._buckets[key] = (tokens - 1.0, now)
        return True
