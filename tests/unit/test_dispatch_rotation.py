"""The retry's rotation: the head every time, and a page of the rest that moves on so
that every waiting item is visited (dispatch/rotation.py)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from dispatch.rotation import Rotation


def _queue(ids: list[int]) -> list[tuple[tuple[int, ...], int]]:
    return [((i,), i) for i in ids]


def test_a_short_queue_is_visited_whole_every_time() -> None:
    r = Rotation(head=3, page=3)
    assert r.pick("q", _queue([1, 2, 3, 4, 5])) == [1, 2, 3, 4, 5]
    assert r.pick("q", _queue([1, 2, 3, 4, 5])) == [1, 2, 3, 4, 5]


def test_the_page_moves_on_and_starts_over() -> None:
    r = Rotation(head=2, page=2)
    q = _queue(list(range(1, 8)))  # head 1-2, rest 3-7
    assert r.pick("q", q) == [1, 2, 3, 4]
    assert r.pick("q", q) == [1, 2, 5, 6]
    assert r.pick("q", q) == [1, 2, 7]
    assert r.pick("q", q) == [1, 2, 3, 4]


def test_queues_rotate_apart_and_items_served_meanwhile_are_skipped() -> None:
    r = Rotation(head=1, page=2)
    assert r.pick("a", _queue([1, 2, 3, 4, 5, 6])) == [1, 2, 3]
    assert r.pick("b", _queue([10, 20])) == [10, 20]
    # 4 was served meanwhile, 9 arrived: the page goes on after 3
    assert r.pick("a", _queue([1, 2, 3, 5, 6, 9])) == [1, 5, 6]
    assert r.pick("a", _queue([1, 2])) == [1, 2]  # the rest shrank below the cursor


@given(
    st.lists(st.integers(0, 10_000), unique=True, max_size=300).map(sorted),
    st.integers(1, 30),
    st.integers(1, 30),
)
def test_every_waiting_item_is_visited_within_its_bound(
    ids: list[int], head: int, page: int
) -> None:
    """Before 2026-12-04 only the first 50 were ever visited."""
    r = Rotation(head=head, page=page)
    q = _queue(ids)
    rounds = max(1, math.ceil(max(0, len(ids) - head) / page))
    seen: set[int] = set()
    for _ in range(rounds):
        picked = r.pick("q", q)
        assert picked[: min(head, len(ids))] == ids[:head]  # the oldest, every time
        assert len(picked) <= head + page
        assert len(set(picked)) == len(picked)
        seen.update(picked)
    assert seen == set(ids)
