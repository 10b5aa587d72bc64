"""Which residents one alert-engine process decides for.

A resident's detectors hold state (persistence runs, fall episodes, timers),
so every reading of one resident must reach the same engine. With
``ELDERCARE_ALERT_SHARD=k/n`` (or ``eldercare alerts --shard k/n``) the engine
owns the residents whose id modulo ``n`` is ``k``: ``n`` standalone engines,
one per core or machine, together decide for everyone, each reading the whole
ingested stream and skipping the rest. The default ``0/1`` owns everyone.

What else is safe with several engines: the one-open-alert index turns a
repeat raise into an update; the daily summaries are written under a per-day
advisory lock; escalation and restart only touch the engine's own residents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_FORM: Final = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A shard spec that is not ``k/n`` with 0 <= k < n."""


@dataclass(frozen=True, slots=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ShardError(f"shard {self.index}/{self.count}: need 0 <= k < n")

    @classmethod
    def parse(cls, spec: str) -> Shard:
        match = _FORM.match(spec)
        if match is None:
            raise ShardError(f"shard {spec!r}: expected k/n, e.g. 0/2")
        return cls(int(match.group(1)), int(match.group(2)))

    def owns(self, resident_id: int) -> bool:
        return self.count == 1 or resident_id % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


EVERYONE: Final = Shard()
