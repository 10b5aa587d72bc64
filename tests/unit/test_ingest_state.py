"""The latest state per band (pure): newest value per group, never moved backwards."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eldercare.protocol import Telemetry
from ingest.rows import Accepted, ms_to_datetime
from ingest.state import STATE_COLUMNS, latest_states

T0 = 1_790_000_000_000
readings = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.integers(0, 50),  # ts offset (s): ties and out-of-order arrivals happen
        st.one_of(st.none(), st.integers(40, 180)),  # hr
        st.one_of(st.none(), st.integers(0, 20_000)),  # steps
    ),
    min_size=1,
    max_size=40,
)


def _accepted(items: list[tuple[str, int, int | None, int | None]]) -> list[Accepted]:
    return [
        Accepted(Telemetry(device_id=d, seq=i, ts=T0 + s * 1000, hr=hr, steps=steps), 7)
        for i, (d, s, hr, steps) in enumerate(items)
    ]


@settings(max_examples=150, deadline=None)
@given(readings)
def test_one_row_per_band_with_the_newest_value_of_each_group(
    items: list[tuple[str, int, int | None, int | None]],
) -> None:
    rows = [dict(zip(STATE_COLUMNS, r, strict=True)) for r in latest_states(_accepted(items))]
    assert [r["device_id"] for r in rows] == sorted({d for d, *_ in items})
    for row in rows:
        mine = [
            (s, i, hr, steps) for i, (d, s, hr, steps) in enumerate(items) if d == row["device_id"]
        ]
        assert row["last_seen"] == ms_to_datetime(T0 + max(s for s, *_ in mine) * 1000)
        with_steps = [(s, i, steps) for s, i, _, steps in mine if steps is not None]
        if with_steps:
            s, _, steps = max(with_steps)  # newest; among equal times the later arrival
            assert (row["steps"], row["steps_at"]) == (steps, ms_to_datetime(T0 + s * 1000))
        else:
            assert row["steps"] is None
        with_hr = [(s, i, hr) for s, i, hr, _ in mine if hr is not None]
        if with_hr:
            assert row["hr"] == max(with_hr)[2]
