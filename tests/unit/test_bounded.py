from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eldercare.bounded import remember


def test_the_oldest_entry_goes_first_and_the_rest_stay() -> None:
    cache: OrderedDict[int, str] = OrderedDict()
    for k in range(5):
        assert remember(cache, k, f"d{k}", limit=3) == f"d{k}"
    assert cache == {2: "d2", 3: "d3", 4: "d4"}


def test_storing_a_key_again_makes_it_the_newest() -> None:
    cache = OrderedDict([(1, "a"), (2, "b")])
    remember(cache, 1, "a2", limit=2)
    remember(cache, 3, "c", limit=2)
    assert cache == {1: "a2", 3: "c"}


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        remember(OrderedDict(), 1, 1, limit=0)


@given(st.lists(st.integers(0, 20), max_size=200), st.integers(1, 8))
def test_never_above_the_limit_and_always_holds_the_last_keys(keys: list[int], limit: int) -> None:
    cache: OrderedDict[int, int] = OrderedDict()
    for k in keys:
        remember(cache, k, k, limit=limit)
    assert len(cache) <= limit
    recent = list(dict.fromkeys(reversed(keys)))[:limit]  # the last distinct keys stored
    assert set(cache) == set(recent)
