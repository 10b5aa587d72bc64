"""The outbox's gaps (dispatch/outbox_gaps.py) against a model of PostgreSQL's
transactions: whatever the order writers take ids, commit and roll back in, and the
outbox polls and restarts in, every committed event is published exactly once, and
no gap outlives the transactions that could fill it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.outbox_gaps import Cursor, Gap, filled, found, settled

LIMIT = 2  # rows per query, small so that polls fall behind


@dataclass
class Database:
    """Transactions take their xid when they begin (our writers write the order
    first), then ids; a snapshot sees what committed before it."""

    next_xid: int = 100
    next_id: int = 1
    running: dict[int, list[int]] = field(default_factory=dict)
    committed: set[int] = field(default_factory=set)

    def begin(self) -> None:
        self.running[self.next_xid] = []
        self.next_xid += 1

    def write(self, pick: int) -> None:
        if self.running:
            xid = sorted(self.running)[pick % len(self.running)]
            self.running[xid].append(self.next_id)
            self.next_id += 1

    def end(self, pick: int, *, commit: bool) -> None:
        if self.running:
            xid = sorted(self.running)[pick % len(self.running)]
            ids = self.running.pop(xid)
            if commit:
                self.committed.update(ids)

    def snapshot(self) -> tuple[int, int, frozenset[int]]:
        xmin = min(self.running, default=self.next_xid)
        return xmin, self.next_xid, frozenset(self.committed)


def poll(db: Database, cursor: Cursor, published: list[int]) -> None:
    """One poll as dispatch.outbox.Outbox.publish_new makes it."""
    xmin, xmax, visible = db.snapshot()
    in_gaps = sorted(i for i in visible if any(g.lo <= i <= g.hi for g in cursor.gaps))
    for i in in_gaps[:LIMIT]:
        published.append(i)
        cursor.took(i)
    if len(in_gaps) < LIMIT:
        cursor.settle(xmin=xmin, xmax=xmax)
    for i in sorted(i for i in visible if i > cursor.last)[:LIMIT]:
        published.append(i)
        cursor.took(i)


# weighted: writes and polls come often, so transactions overlap and polls fall behind
KINDS = ["begin", "begin", "write", "write", "write", "commit", "abort", "poll", "poll", "poll",
         "restart"]  # fmt: skip
OPS = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 20)), min_size=30, max_size=150)


@settings(max_examples=300, deadline=None)
@given(OPS, st.lists(st.booleans(), min_size=30, max_size=30))
def test_every_committed_event_is_published_once(
    ops: list[tuple[str, int]], endings: list[bool]
) -> None:
    db, cursor, published = Database(), Cursor(last=0), []
    for op, pick in ops:
        if op == "begin":
            db.begin()
        elif op == "write":
            db.write(pick)
        elif op in ("commit", "abort"):
            db.end(pick, commit=op == "commit")
        elif op == "poll":
            poll(db, cursor, published)
        else:  # the service restarts: the cursor as stored
            cursor = Cursor(cursor.last, [Gap.from_json(g.to_json()) for g in cursor.gaps])
    for commit in endings:
        db.end(0, commit=commit)
    while db.running:
        db.end(0, commit=True)
    for _ in range(2 + (db.next_id // LIMIT) * 2):
        poll(db, cursor, published)
    assert sorted(published) == sorted(db.committed)  # each once
    assert cursor.gaps == []  # nothing left that could still be filled


def test_gaps_are_found_between_the_ids_read() -> None:
    assert found(4, [7, 5, 10]) == [Gap(6, 6), Gap(8, 9)]
    assert found(4, [5, 6]) == []


def test_an_id_read_in_a_gap_splits_it() -> None:
    assert filled([Gap(3, 9, 50)], [3, 6, 12]) == [Gap(4, 5, 50), Gap(7, 9, 50)]
    assert filled([Gap(3, 3)], [3]) == []


def test_a_gap_gets_its_horizon_then_settles_once_xmin_reaches_it() -> None:
    [g] = settled([Gap(3, 4)], xmin=90, xmax=120)
    assert g.horizon == 120
    assert settled([g], xmin=119, xmax=130) == [g]
    assert settled([g], xmin=120, xmax=130) == []


@pytest.mark.parametrize("bad", [[5, 4, None], [None, 4, None], [1, 2]])
def test_a_stored_gap_that_is_not_one_is_refused(bad: list[int | None]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        Gap.from_json(bad)
