"""Which of a queue's waiting items a retry visits this time (pure).

The retry timer (:mod:`dispatch.timers`) visits what waits for a worker, a bounded
number each time: an offer costs a candidate query. It visits the ``head`` (the
first in queue order: the oldest emergencies go first to a worker who comes free)
and a ``page`` of the rest, which moves on each time and starts over after the
last, so every waiting item is visited within ``ceil((n - head) / page)`` retries.

Before 2026-12-04 each retry visited only the first 50 in queue order. When those
could not be served (every worker nearby had declined them and was cooling down, or
no one had the skills) nothing after them was ever offered again, however many
workers came free: in a surge of emergencies the 51st waited a day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

HEAD: Final = 25  # the first in queue order, every time
PAGE: Final = 25  # then this many of the rest, moving on each time


@dataclass(slots=True)
class Rotation:
    """Where each queue's page ended last time (by queue name), kept by the caller
    between retries. A queue key is an item's place in the queue order."""

    head: int = HEAD
    page: int = PAGE
    _after: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def pick(self, queue: str, waiting: Sequence[tuple[tuple[int, ...], int]]) -> list[int]:
        """The ids to visit now of ``waiting`` ((key, id) in queue order, keys
        increasing): the head, then up to ``page`` of the rest after the last page's
        end (from the start of the rest once the page reached its end)."""
        head = [item_id for _, item_id in waiting[: self.head]]
        rest = waiting[self.head :]
        after = self._after.get(queue)
        start = 0 if after is None else next((i for i, (k, _) in enumerate(rest) if k > after),
                                             len(rest))  # fmt: skip
        if start >= len(rest):
            start = 0  # past the end (or the rest shrank): start over
        page = rest[start : start + self.page]
        if page and start + self.page < len(rest):
            self._after[queue] = page[-1][0]
        else:
            self._after.pop(queue, None)  # the page reached the end: start over next time
        return head + [item_id for _, item_id in page]
