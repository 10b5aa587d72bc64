"""The fall detector on synthetic wrist windows, and the model file."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.falls import FallDecision, FallInputError, FallModelError, cli, detect_fall, load_model
from alerts.falls.cli import score_main
from alerts.falls.features import FEATURE_NAMES, STILL_FLOOR_G, candidate_features, window_signal
from alerts.falls.model import DEFAULT_MODEL_PATH, FallModel
from alerts.falls.signal import COMMON_RANGE_G, resample
from tests.unit.test_falls_signal import batch_stamped

IMPACT_S = 5.0
MODEL = load_model()


def fall_window(t: np.ndarray, *, impact_g: float = 4.0, seed: int = 0) -> np.ndarray:
    """Standing, a 0.4 s free-fall dip, an impact, then lying still turned 90 degrees."""
    rng = np.random.default_rng(seed)
    upright = np.array([0.0, 0.0, 1.0])
    lying = np.array([1.0, 0.0, 0.0])
    acc = np.where((t < IMPACT_S)[:, None], upright, lying)
    falling = (t > IMPACT_S - 0.5) & (t < IMPACT_S - 0.05)
    acc[falling] *= 0.35
    pulse = impact_g * np.exp(-0.5 * ((t - IMPACT_S) / 0.06) ** 2)
    acc = acc + pulse[:, None] * np.array([0.6, 0.0, 0.8])
    return acc + rng.normal(0.0, 0.02, acc.shape)


def clapping_window(t: np.ndarray) -> np.ndarray:
    """Hands clapping twice a second: sharp 5 g spikes, no lying still."""
    phase = (t % 0.5) - 0.25
    spikes = 5.0 * np.exp(-0.5 * (phase / 0.04) ** 2) * ((t > 2.0) & (t < 9.0))
    swing = 0.4 * np.sin(2 * np.pi * 2.0 * t) * ((t > 2.0) & (t < 9.0))
    return np.stack((0.2 + spikes + swing, 0.1 * swing, np.full_like(t, 0.97)), axis=1)


def knock_window(t: np.ndarray, *, impact_g: float = 4.0) -> np.ndarray:
    """Swing the forearm 90 degrees, hit something hard, swing back: no new posture."""
    swing = np.clip(1.0 - np.abs(t - IMPACT_S) / 0.8, 0.0, 1.0) * (np.pi / 2)
    acc = np.stack((np.sin(swing), np.zeros_like(t), np.cos(swing)), axis=1)
    pulse = impact_g * np.exp(-0.5 * ((t - IMPACT_S) / 0.06) ** 2)
    rng = np.random.default_rng(5)
    return acc + pulse[:, None] * np.array([0.6, 0.0, 0.8]) + rng.normal(0.0, 0.02, acc.shape)


def walking_window(t: np.ndarray) -> np.ndarray:
    swing = np.sin(2 * np.pi * 0.9 * t)
    step = 0.35 * np.sin(2 * np.pi * 1.8 * t)
    return np.stack((0.5 * swing + step, 0.2 * step, np.sqrt(1 - 0.25 * swing**2)), axis=1)


def still_window(t: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.array([0.02, -0.01, 1.0]) + rng.normal(0.0, 0.005, (t.size, 3))


def times(rate: float, span: float = 12.0) -> np.ndarray:
    return np.arange(0.0, span, 1.0 / rate)


@pytest.mark.parametrize("rate", [8.0, 20.0, 50.0, 200.0])
def test_a_synthetic_fall_is_detected_at_the_impact_at_any_rate(rate: float) -> None:
    t = times(rate) + 100.0  # impact time is reported in the input's time base
    decision = detect_fall(t, fall_window(t - 100.0), MODEL)
    assert decision.fall
    assert decision.t_s is not None
    assert abs(decision.t_s - (100.0 + IMPACT_S)) < 0.3


def test_a_gentler_fall_is_still_detected() -> None:
    t = times(50.0)
    assert detect_fall(t, fall_window(t, impact_g=2.5), MODEL).fall


def test_jittered_bursty_timestamps_give_the_same_decision() -> None:
    rng = np.random.default_rng(11)
    t = np.sort(rng.uniform(0.0, 12.0, 700))
    t = np.concatenate((t, t[::5]))  # bursts of duplicates
    order = rng.permutation(t.size)
    bursty = detect_fall(t[order], fall_window(t[order]), MODEL)
    regular = detect_fall(times(50.0), fall_window(times(50.0)), MODEL)
    assert bursty.fall == regular.fall
    assert bursty.t_s is not None
    assert abs(bursty.t_s - IMPACT_S) < 0.3
    assert abs(bursty.score - regular.score) < 0.15


@pytest.mark.parametrize("impact_g", [1.8, 2.5])
def test_a_fall_stamped_in_batches_is_scored_as_when_stamped_per_sample(impact_g: float) -> None:
    """A band that stamps each 0.1 s batch of its 50 Hz samples with the batch time."""
    t = times(50.0)
    acc = fall_window(t, impact_g=impact_g)
    stamps = batch_stamped(t, 0.1)  # 1-3 ms apart, each batch's last at its own time
    assert np.count_nonzero(np.diff(stamps) < 0.005) * 2 > t.size
    per_sample = detect_fall(t, acc, MODEL)
    batched = detect_fall(stamps, acc, MODEL)
    assert batched.fall
    assert per_sample.fall
    assert batched.t_s is not None
    assert per_sample.t_s is not None
    assert abs(batched.t_s - per_sample.t_s) < 0.05
    assert batched.score == pytest.approx(per_sample.score, abs=1e-3)


@pytest.mark.parametrize("window", [clapping_window, knock_window, walking_window, still_window])
@pytest.mark.parametrize("rate", [8.0, 20.0, 50.0, 200.0])
def test_everyday_activity_is_not_a_fall(window: object, rate: float) -> None:
    t = times(rate)
    decision = detect_fall(t, window(t), MODEL)  # type: ignore[operator]
    assert decision == FallDecision(fall=False, t_s=None, score=decision.score)


def test_a_knock_scores_far_below_the_same_impact_ending_in_a_new_posture() -> None:
    t = times(50.0)
    knock = detect_fall(t, knock_window(t, impact_g=6.0), MODEL)
    fall = detect_fall(t, fall_window(t, impact_g=6.0), MODEL)
    assert not knock.fall
    assert fall.fall
    assert knock.score < 0.5 * fall.score


def test_stillness_below_the_noise_floor_is_one_value() -> None:
    """A filtered device's perfect stillness and a noisy one's look the same."""
    t = times(50.0)
    quiet = fall_window(t)
    clean = quiet - np.random.default_rng(0).normal(0.0, 0.02, quiet.shape)
    names = list(FEATURE_NAMES)
    rows = [candidate_features(resample(t, acc)).features[0] for acc in (quiet, clean)]
    for name in ("post_std_g", "post_long_std_g", "pre_activity_std_g"):
        i = names.index(name)
        assert rows[0][i] == rows[1][i] == STILL_FLOOR_G


def test_every_band_with_at_least_the_common_range_gives_the_same_decision() -> None:
    """A +-4 g band and a +-16 g band record a violent fall differently; the model
    sees both as the +-4 g band."""
    t = times(50.0)
    acc = fall_window(t, impact_g=12.0)
    assert np.abs(acc).max() > 2 * COMMON_RANGE_G
    wide = detect_fall(t, np.clip(acc, -16.0, 16.0), MODEL)
    narrow = detect_fall(t, np.clip(acc, -COMMON_RANGE_G, COMMON_RANGE_G), MODEL)
    assert wide == narrow
    assert wide.fall


def test_a_hit_with_nothing_carrying_the_wrist_down_has_no_jerk() -> None:
    """The jerk of an impact counts in proportion to the unloading before it."""
    t = times(50.0)
    jerk = list(FEATURE_NAMES).index("unloaded_jerk_g_per_s")
    pre_min = list(FEATURE_NAMES).index("pre_min_g")
    fell = candidate_features(window_signal(t, fall_window(t))).features[0]
    hit = fall_window(t)
    hit[(t > IMPACT_S - 0.5) & (t < IMPACT_S - 0.05)] /= 0.35  # the same, without the dip
    knocked = candidate_features(window_signal(t, hit)).features[0]
    assert fell[pre_min] < 0.75
    assert knocked[pre_min] > 0.95
    assert fell[jerk] > 10.0
    assert knocked[jerk] < 0.25 * fell[jerk]


def test_rotating_the_band_does_not_change_the_decision() -> None:
    t = times(50.0)
    acc = fall_window(t)
    angle = 1.1
    rot = np.array(
        [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    flipped = acc @ rot.T * np.array([-1.0, 1.0, -1.0])
    a, b = detect_fall(t, acc, MODEL), detect_fall(t, flipped, MODEL)
    assert a.fall == b.fall
    assert a.score == pytest.approx(b.score, abs=1e-9)


def test_detection_is_pure() -> None:
    t = times(20.0)
    acc = fall_window(t)
    before = acc.copy()
    assert detect_fall(t, acc, MODEL) == detect_fall(t, acc, MODEL)
    np.testing.assert_array_equal(acc, before)


def test_invalid_windows_raise_clear_errors() -> None:
    with pytest.raises(FallInputError, match="shape"):
        detect_fall(np.arange(10.0), np.ones((10, 2)), MODEL)
    with pytest.raises(FallInputError, match="too short"):
        detect_fall(np.arange(30) * 0.01, np.ones((30, 3)), MODEL)


def test_a_decision_needs_its_impact_time() -> None:
    with pytest.raises(ValueError, match="impact time"):
        FallDecision(fall=True, t_s=None, score=0.9)


def test_model_json_loads_and_round_trips(tmp_path: Path) -> None:
    doc = MODEL.to_json()
    assert doc["feature_names"] == list(FEATURE_NAMES)
    assert 0.0 < doc["threshold"] < 1.0
    assert {"loso_umafall", "loso_hifd", "train_umafall_test_hifd"} <= set(doc["validation"])
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    again = load_model(path)
    assert again.to_json() == doc
    x = np.random.default_rng(1).normal(size=(4, len(FEATURE_NAMES)))
    np.testing.assert_array_equal(again.score(x), MODEL.score(x))


def test_broken_model_files_are_refused(tmp_path: Path) -> None:
    doc = MODEL.to_json()
    path = tmp_path / "m.json"
    path.write_text(json.dumps({**doc, "coefficients": [1.0]}))
    with pytest.raises(FallModelError, match="coefficients"):
        load_model(path)
    path.write_text(json.dumps({**doc, "feature_names": ["peak"]}))
    with pytest.raises(FallModelError, match="features"):
        load_model(path)
    path.write_text("{not json")
    with pytest.raises(FallModelError, match="cannot read"):
        load_model(path)
    with pytest.raises(FallModelError, match="missing"):
        FallModel.from_json({k: v for k, v in doc.items() if k != "intercept"})


def write_csv(path: Path, t: np.ndarray, acc: np.ndarray) -> None:
    rows = "".join(
        f"{ti:.4f},{a:.4f},{b:.4f},{c:.4f}\n" for ti, (a, b, c) in zip(t, acc, strict=True)
    )
    path.write_text("t_s,ax_g,ay_g,az_g\n" + rows)


def test_cli_scores_files_and_directories_and_reports_bad_ones(tmp_path: Path) -> None:
    t = times(20.0)
    write_csv(tmp_path / "a_fall.csv", t, fall_window(t))
    write_csv(tmp_path / "b_still.csv", t, still_window(t))
    bad = tmp_path / "c_bad.csv"
    bad.write_text("nope\n")
    (tmp_path / "subject_2").mkdir()  # a dataset kept per subject: its folders are read too
    write_csv(tmp_path / "subject_2" / "a_more.CSV", t, still_window(t))  # a Windows tool's
    (tmp_path / "subject_2" / "notes.txt").write_text("not a recording\n")
    (tmp_path / "subject_2" / "back_up").symlink_to(tmp_path)  # a loop: not followed
    out = io.StringIO()
    code = score_main([str(tmp_path), str(tmp_path / "missing.csv")], out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 1
    assert [Path(line["file"]).relative_to(tmp_path).as_posix() for line in lines] == [
        "a_fall.csv",
        "b_still.csv",
        "c_bad.csv",
        "subject_2/a_more.CSV",
        "missing.csv",
    ]
    assert lines[3]["fall"] is False
    assert lines[0]["fall"] is True
    assert abs(lines[0]["t_s"] - IMPACT_S) < 0.3
    assert lines[1] == {
        "file": lines[1]["file"],
        "fall": False,
        "t_s": None,
        "score": lines[1]["score"],
    }
    assert "header" in lines[2]["error"]
    assert "cannot read" in lines[4]["error"]


def test_cli_returns_zero_when_every_file_scores(tmp_path: Path) -> None:
    t = times(20.0)
    write_csv(tmp_path / "still.csv", t, still_window(t))
    out = io.StringIO()
    assert score_main([str(tmp_path / "still.csv")], out=out) == 0


def test_cli_reports_an_unexpected_failure_on_one_file_and_scores_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = times(20.0)
    write_csv(tmp_path / "a.csv", t, still_window(t))
    write_csv(tmp_path / "b.csv", t, still_window(t))
    write_csv(tmp_path / "c.csv", t, fall_window(t))
    real = cli.detect_fall
    calls = iter(range(3))

    def defect_on_the_second(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 1:  # stands for a defect not yet found, met on one file only
            raise IndexError("index 7 is out of bounds")
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "detect_fall", defect_on_the_second)
    out = io.StringIO()
    assert score_main([str(tmp_path)], out=out) == 1
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [Path(line["file"]).name for line in lines] == ["a.csv", "b.csv", "c.csv"]
    assert lines[1]["error"] == (
        "internal error, please report: IndexError: index 7 is out of bounds"
    )
    assert lines[0]["fall"] is False
    assert lines[2]["fall"] is True


def test_cli_stops_quietly_when_its_reader_goes_away(tmp_path: Path) -> None:
    t = times(20.0)
    for i in range(200):  # more lines than a pipe buffer holds once the reader is gone
        write_csv(tmp_path / f"w{i:03d}.csv", t, still_window(t))
    eldercare = Path(sys.executable).with_name("eldercare")
    cmd = f"'{eldercare}' falls score '{tmp_path}' | head -n 1"
    done = subprocess.run(
        ["bash", "-c", cmd], check=True, capture_output=True, text=True, timeout=120
    )
    assert json.loads(done.stdout)["file"].endswith("w000.csv")
    assert done.stderr == ""


def test_cli_stops_quietly_on_ctrl_c(tmp_path: Path) -> None:
    t = times(20.0)
    for i in range(3000):  # long enough to be interrupted mid-way
        write_csv(tmp_path / f"w{i:04d}.csv", t, still_window(t))
    eldercare = Path(sys.executable).with_name("eldercare")
    with subprocess.Popen(
        [str(eldercare), "falls", "score", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline()  # it is scoring
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    assert "Traceback" not in err


# A recording cut off right after its impact: the full model needs MIN_POST_S after an
# impact, so the early model judges it at its decision threshold (docs/falls.md).


@pytest.mark.parametrize("after_s", [0.75, 0.85])
def test_a_fall_at_the_very_end_of_a_window_is_judged_by_the_early_model(after_s: float) -> None:
    t = times(50.0, span=IMPACT_S + after_s)
    acc = fall_window(t)
    assert not detect_fall(t, acc, MODEL, judge_tail=False).fall  # the full model cannot see it
    decision = detect_fall(t, acc, MODEL)
    assert decision.fall
    assert decision.t_s == pytest.approx(IMPACT_S, abs=0.1)
    assert decision.score >= MODEL.threshold


def tap_window(t: np.ndarray, *, impact_g: float = 6.0) -> np.ndarray:
    """A tap on the band of a still wrist: a sharp peak, nothing carrying the wrist down."""
    rng = np.random.default_rng(2)
    acc = np.array([0.02, -0.01, 1.0]) + rng.normal(0.0, 0.01, (t.size, 3))
    pulse = impact_g * np.exp(-0.5 * ((t - IMPACT_S) / 0.03) ** 2)
    return acc + pulse[:, None] * np.array([0.0, 0.6, 0.8])


@pytest.mark.parametrize("after_s", [0.75, 0.85, 0.95])
def test_everyday_impacts_at_the_very_end_of_a_window_are_not_falls(after_s: float) -> None:
    t = times(50.0, span=IMPACT_S + after_s)
    clapping_to_the_end = clapping_window(t + (9.0 - t[-1]))
    for window in (tap_window(t), clapping_to_the_end, walking_window(t)):
        decision = detect_fall(t, window, MODEL)
        assert not decision.fall
        assert decision.score < MODEL.threshold


def test_an_impact_with_too_little_after_it_for_either_model_is_not_judged() -> None:
    t = times(50.0, span=IMPACT_S + 0.5)  # the early model needs 0.7 s after
    assert detect_fall(t, fall_window(t), MODEL) == detect_fall(
        t, fall_window(t), MODEL, judge_tail=False
    )


def test_the_tail_score_is_on_the_full_models_scale_and_keeps_the_ranking() -> None:
    early = MODEL.early
    assert early is not None
    assert early.decision_threshold is not None
    t = times(50.0, span=IMPACT_S + 0.85)
    scores = [detect_fall(t, fall_window(t, impact_g=g), MODEL).score for g in (1.8, 3.0, 6.0)]
    assert scores == sorted(scores)
    for g, score in zip((1.8, 3.0, 6.0), scores, strict=True):
        decision = detect_fall(t, fall_window(t, impact_g=g), MODEL)
        assert decision.fall == (score >= MODEL.threshold)


def test_without_an_early_decision_threshold_the_tail_is_not_judged() -> None:
    t = times(50.0, span=IMPACT_S + 0.85)
    custom = load_model(DEFAULT_MODEL_PATH)  # a custom model path: no early model
    assert not detect_fall(t, fall_window(t), custom).fall
    assert MODEL.early is not None
    screen_only = replace(MODEL, early=replace(MODEL.early, decision_threshold=None))
    assert not detect_fall(t, fall_window(t), screen_only).fall


def test_the_early_models_decision_threshold_round_trips_and_is_checked(tmp_path: Path) -> None:
    assert MODEL.early is not None
    doc = MODEL.early.to_json()
    assert 0.0 < doc["decision_threshold"] < 1.0
    path = tmp_path / "early.json"
    path.write_text(json.dumps(doc))
    again = load_model(DEFAULT_MODEL_PATH, early_path=path).early
    assert again is not None
    assert again.to_json() == doc
    path.write_text(json.dumps({**doc, "decision_threshold": 1.5}))
    with pytest.raises(FallModelError, match="decision_threshold"):
        load_model(DEFAULT_MODEL_PATH, early_path=path)
