"""Alert-engine shards: every resident is decided by exactly one of n engines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.shard import Shard, ShardError
from eldercare.settings import Settings


@given(resident=st.integers(min_value=1, max_value=2**62), n=st.integers(min_value=1, max_value=64))
def test_every_resident_belongs_to_exactly_one_shard(resident: int, n: int) -> None:
    owners = [k for k in range(n) if Shard(k, n).owns(resident)]
    assert len(owners) == 1


def test_the_default_shard_owns_everyone_and_the_spec_round_trips() -> None:
    assert all(Shard().owns(r) for r in range(1, 50))
    assert Shard.parse(" 1 / 3 ") == Shard(1, 3)
    assert str(Shard.parse("2/4")) == "2/4"


@pytest.mark.parametrize("spec", ["", "1", "2/2", "3/2", "-1/2", "0/0", "a/b", "1/2/3"])
def test_a_bad_shard_is_refused_with_its_reason(spec: str) -> None:
    with pytest.raises(ShardError, match="shard"):
        Shard.parse(spec)


def test_the_setting_is_checked_when_the_service_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELDERCARE_ALERT_SHARD", "1/2")
    assert Settings().alert_shard == "1/2"
    for bad in ("2/2", "half"):
        monkeypatch.setenv("ELDERCARE_ALERT_SHARD", bad)
        with pytest.raises(ValidationError, match=r"ALERT_SHARD|alert_shard|pattern"):
            Settings()
