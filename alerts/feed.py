"""Is the engine hearing its bands? The feed from ingest, watched (pure: pass ``now``).

A city's bands send a message every fraction of a second between them: when none at all
has reached the engine for :data:`SILENCE`, it is the platform that is silent (the
broker, ingest, the network between), not each band. Band silences are then not
evidence (``Tick.feed_since``, :func:`alerts.detectors.device_health.evaluate`) until
each band has had its own offline limit to be heard since the feed came back. With
fewer than :data:`MIN_RESIDENTS` residents (a demo, a pilot), gaps between messages are
normal and tell nothing: the guard is off and silences are judged as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

SILENCE: Final = timedelta(seconds=120)
MIN_RESIDENTS: Final = 50


@dataclass(slots=True)
class FeedWatch:
    """When the engine started, last heard a batch, and has heard batches without a
    break of :data:`SILENCE` since."""

    started: datetime
    last: datetime | None = None
    since: datetime | None = None

    def heard(self, now: datetime) -> None:
        """A batch arrived (readings, refusals, statuses: anything)."""
        if self.last is None or now - self.last > SILENCE:
            self.since = now  # the feed (re)starts here
        self.last = max(self.last or now, now)

    def feed_since(self, now: datetime, residents: int) -> datetime | None:
        """For ``Tick.feed_since``: None when the guard is off; ``now`` while the feed is
        silent (no band is judged silent); else since when it has run unbroken (the
        engine's start, until the first batch)."""
        if residents < MIN_RESIDENTS:
            return None
        if self.last is None:
            return self.started if now - self.started <= SILENCE else now
        if now - self.last > SILENCE:
            return now
        return self.since
