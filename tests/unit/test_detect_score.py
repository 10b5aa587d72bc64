"""How bench/detect.py scores a run: alerts matched to the simulator's episodes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench.detect_score import GRACE, Run, merge, score, summarise, utc_ms
from simulators.scenario import Episode

T0 = 1_700_000_000_000  # ms; 06:13 local (UTC+8): a waking hour is 7-22 local


def episode(id_: int, kind: str, start_s: float, end_s: float, **params: Any) -> Episode:
    return Episode(id_, 0, "D1", "R1", kind, T0 + int(start_s * 1000), T0 + int(end_s * 1000),
                   params)  # fmt: skip


def alert(type_: str, at_s: float, *, resident: int = 1, state: str = "open",
          **detail: Any) -> dict[str, Any]:  # fmt: skip
    return {"resident_id": resident, "type": type_, "severity": "critical", "state": state,
            "opened_at": utc_ms(T0 + int(at_s * 1000)), "closed_at": None,
            "detail": detail}  # fmt: skip


def run(episodes: list[tuple[Episode, int]], alerts: list[dict[str, Any]]) -> Run:
    return Run("t", 1, 1.0, episodes, alerts, 0.0, 0)


def test_an_alert_inside_its_episode_detects_it_with_its_latency() -> None:
    s = score(run([(episode(1, "sos", 10, 20), 1)], [alert("sos", 10.4)]))["sos"]
    assert (s.tp, s.fp, s.episodes, s.latencies) == (1, 0, 1, [0.4])


def test_an_alert_of_another_resident_or_before_the_episode_is_false() -> None:
    e = (episode(1, "sos", 10, 20), 1)
    s = score(run([e], [alert("sos", 12, resident=2), alert("sos", 9)]))["sos"]
    assert (s.tp, s.fp) == (0, 2)
    assert s.missed == {"sos": 1}
    assert sum(s.false.values()) == 2


def test_grace_after_the_end_counts_and_beyond_it_does_not() -> None:
    end = 20 + GRACE.total_seconds()
    inside = score(run([(episode(1, "fever", 10, 20), 1)], [alert("vital_temp_high", end)]))
    beyond = score(run([(episode(1, "fever", 10, 20), 1)], [alert("vital_temp_high", end + 1)]))
    assert inside["vital_temp_high"].tp == 1
    assert (beyond["vital_temp_high"].tp, beyond["vital_temp_high"].fp) == (0, 1)


def test_a_second_alert_in_a_detected_episode_is_a_duplicate_not_false() -> None:
    s = score(run([(episode(1, "sos", 10, 60), 1)], [alert("sos", 11), alert("sos", 30)]))["sos"]
    assert (s.tp, s.fp, s.duplicates) == (1, 0, 1)


def test_long_lie_is_expected_only_of_falls_with_a_long_lie() -> None:
    short = (episode(1, "fall", 10, 20, long_lie=False), 1)
    long_ = (episode(2, "fall", 100, 900, long_lie=True), 1)
    scores = score(run([short, long_], [alert("fall", 11), alert("fall", 101)]))
    assert (scores["fall"].episodes, scores["fall"].tp) == (2, 2)
    assert scores["long_lie"].episodes == 1
    assert scores["long_lie"].missed == {'fall {"long_lie": true}': 1}


def test_a_fall_folded_into_the_open_alert_is_detected_as_merged() -> None:
    first, second = (episode(1, "fall", 10, 20), 1), (episode(2, "fall", 300, 310), 1)
    s = score(run([first, second], [alert("fall", 11, falls=2)]))["fall"]
    assert (s.tp, s.merged, s.fp, s.latencies) == (2, 1, 0, [1.0])


def test_a_fall_retracted_on_the_screen_alone_counts_as_detected_and_retracted() -> None:
    a = alert("fall", 11, state="false_alarm", sources=["screen"])
    s = score(run([(episode(1, "fall", 10, 20), 1)], [a]))["fall"]
    assert (s.tp, s.retracted) == (1, 1)


def test_merge_and_summarise_add_runs_up() -> None:
    one = score(run([(episode(1, "sos", 10, 20), 1)], [alert("sos", 10.5)]))
    two = score(run([(episode(1, "sos", 10, 20), 1)], [alert("sos", 25 + 3600)]))
    row = summarise(merge([one, two]))["sos"]
    assert (row["tp"], row["fp"], row["episodes"], row["missed"]) == (1, 1, 2, 1)
    assert (row["precision"], row["recall"]) == (0.5, 0.5)
    assert row["p50_latency_s"] == 0.5


def test_night_activity_waits_for_the_morning_of_a_night_wander() -> None:
    night = T0 - int(timedelta(hours=5).total_seconds() * 1000)  # ~01:13 local
    e = Episode(1, 0, "D1", "R1", "wandering", night, night + 600_000, {})
    at = utc_ms(night + int(timedelta(hours=5).total_seconds() * 1000))  # 06:13 local
    a = {**alert("night_activity", 0), "opened_at": at}
    s = score(run([(e, 1)], [a]))["night_activity"]
    assert (s.episodes, s.tp) == (1, 1)
