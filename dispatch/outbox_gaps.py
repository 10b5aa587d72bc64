"""Which order-event ids the outbox skipped and must read again (pure).

An event's id is taken when it is written; its transaction may commit after
others with higher ids have been read. So the outbox reads by id and keeps the
ids it skipped as *gaps*: an id is either in a transaction still running, or
lost for good (the transaction rolled back). A gap is read again at every poll
until its event appears, and dropped once no transaction that could still fill
it is running:

* its *horizon* is the ``xmax`` of the first snapshot taken at a poll after the
  one that found it: every transaction running then has an xid below it (our
  writers take their xid before an event's id: the event follows the order's
  own write in the same transaction);
* it is settled when a poll's snapshot has ``xmin >= horizon``: all those
  transactions have ended, and one that committed is visible in that very
  snapshot, so its event was read in the same poll.

Reading the gaps costs one index lookup per range each poll; a rolled-back
transaction's gap lives for a poll or two. Ids and xids are plain ints here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Gap:
    """Ids ``lo..hi`` (inclusive) not read yet; ``horizon`` once it has one."""

    lo: int
    hi: int
    horizon: int | None = None

    def to_json(self) -> list[int | None]:
        return [self.lo, self.hi, self.horizon]

    @classmethod
    def from_json(cls, value: Sequence[int | None]) -> Gap:
        lo, hi, horizon = value
        if lo is None or hi is None or lo > hi:
            raise ValueError(f"not a gap: {value!r}")
        return cls(int(lo), int(hi), None if horizon is None else int(horizon))


def found(last: int, ids: Iterable[int]) -> list[Gap]:
    """The gaps between ``last`` (the highest id read before) and the ids just read
    above it, in order."""
    gaps: list[Gap] = []
    previous = last
    for i in sorted(ids):
        if i > previous + 1:
            gaps.append(Gap(previous + 1, i - 1))
        previous = max(previous, i)
    return gaps


def filled(gaps: Iterable[Gap], ids: Iterable[int]) -> list[Gap]:
    """``gaps`` without the ids read in them (a range split around each)."""
    read = sorted(set(ids))
    out: list[Gap] = []
    for g in gaps:
        lo = g.lo
        for i in read:
            if i < lo or i > g.hi:
                continue
            if i > lo:
                out.append(Gap(lo, i - 1, g.horizon))
            lo = i + 1
        if lo <= g.hi:
            out.append(Gap(lo, g.hi, g.horizon))
    return out


def settled(gaps: Iterable[Gap], *, xmin: int, xmax: int) -> list[Gap]:
    """After a poll whose snapshot is (``xmin``, ``xmax``) and whose reads are done:
    gaps with no horizon get ``xmax``; gaps whose horizon ``xmin`` has reached are
    dropped. Call it before adding the gaps this poll found (they need a later one)."""
    out: list[Gap] = []
    for g in gaps:
        if g.horizon is None:
            out.append(Gap(g.lo, g.hi, xmax))
        elif xmin < g.horizon:
            out.append(g)
    return out


@dataclass
class Cursor:
    """How far the outbox got: the highest id published, and the gaps below it.

    One poll, on one snapshot: publish the rows read in the gaps (:meth:`took` each),
    then :meth:`settle` (only if every row of the gaps was read), then publish the
    new rows (:meth:`took` each). A failure part way leaves the cursor at what was
    published."""

    last: int
    gaps: list[Gap] = field(default_factory=list)

    def took(self, event_id: int) -> None:
        """``event_id`` was published."""
        if event_id <= self.last:
            self.gaps = filled(self.gaps, [event_id])
        else:
            self.gaps += found(self.last, [event_id])
            self.last = event_id

    def settle(self, *, xmin: int, xmax: int) -> None:
        self.gaps = settled(self.gaps, xmin=xmin, xmax=xmax)

    def ranges(self) -> tuple[list[int], list[int]]:
        """The gaps' bounds, for a query: (lows, highs)."""
        return [g.lo for g in self.gaps], [g.hi for g in self.gaps]
