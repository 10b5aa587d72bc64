"""The early-window model of the fast path: features, scoring, packaging, the engine's use."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from alerts.detectors.falls import FallsState, step_imu
from alerts.detectors.types import Profile
from alerts.falls import FallInputError, FallModel, FallModelError, load_model
from alerts.falls.early import EARLY_FEATURE_NAMES, cut_early, early_features
from alerts.falls.model import DEFAULT_EARLY_MODEL_PATH, DEFAULT_MODEL_PATH
from alerts.falls.screen import screen_early
from eldercare.protocol import ImuWindow
from simulators import motion

MODEL = load_model()
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _early_part(s: motion.Samples) -> tuple[np.ndarray, np.ndarray]:
    """What the simulated band uploads at once: 2.5 s before to 0.8 s after the impact."""
    t = np.asarray(s.t_ms, dtype=np.float64)
    keep = (t >= s.event_ms - 2500) & (t <= s.event_ms + 800)
    acc = np.column_stack((s.ax, s.ay, s.az))[keep]
    return (t[keep] - t[keep][0]) / 1000.0, acc


def _suspected(s: motion.Samples, early: FallModel) -> bool:
    """The engine's view: a window too short to score is no evidence (FallInputError)."""
    try:
        return screen_early(*_early_part(s), early).suspected
    except FallInputError:
        return False


def _window(peak_g: float, turn: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(0.0, 3.3, 1 / 50)
    before, after = np.array([-0.94, 0.12, 0.32]), np.array([0.15, -0.25, 0.95])
    acc = np.where((t < 2.5)[:, None], before, after if turn else before)
    acc = acc + (peak_g - 1.0) * np.exp(-0.5 * ((t - 2.5) / 0.05) ** 2)[:, None] * after
    return t, acc + rng.normal(0.0, 0.01, acc.shape)


def test_the_packaged_model_carries_an_early_model() -> None:
    assert MODEL.early is not None
    assert MODEL.early.feature_names == EARLY_FEATURE_NAMES
    doc = json.loads(DEFAULT_EARLY_MODEL_PATH.read_text())
    assert {"loso_pooled", "train_umafall_test_hifd", "train_hifd_test_umafall"} <= set(
        doc["validation"]
    )
    assert load_model(DEFAULT_MODEL_PATH).early is None  # a custom path names its own early model


def test_a_broken_early_model_is_refused(tmp_path: Path) -> None:
    doc = json.loads(DEFAULT_EARLY_MODEL_PATH.read_text())
    path = tmp_path / "early.json"
    path.write_text(json.dumps({**doc, "feature_names": ["peak"]}))
    with pytest.raises(FallModelError, match="features"):
        load_model(DEFAULT_MODEL_PATH, early_path=path)
    full = tmp_path / "full.json"
    full.write_text(DEFAULT_MODEL_PATH.read_text())
    with pytest.raises(FallModelError, match="features"):  # a full model is no early model
        load_model(DEFAULT_MODEL_PATH, early_path=full)


def test_features_do_not_depend_on_the_bands_axes() -> None:
    t, acc = _window(4.0, True, np.random.default_rng(3))
    turn = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])  # a rotation
    a = early_features(t, acc)
    b = early_features(t, acc @ turn.T)
    assert a is not None
    assert b is not None
    np.testing.assert_allclose(a.row, b.row, rtol=1e-6, atol=1e-6)
    assert a.t_s == pytest.approx(2.5, abs=0.05)


def test_a_hard_turned_impact_is_suspected_and_the_same_impact_untouched_is_not() -> None:
    assert MODEL.early is not None
    rng = np.random.default_rng(4)
    fell = screen_early(*_window(5.0, True, rng), MODEL.early)
    knocked = screen_early(*_window(5.0, False, rng), MODEL.early)
    assert fell.suspected
    assert fell.t_s == pytest.approx(2.5, abs=0.05)
    assert fell.score is not None
    assert knocked.score is not None
    assert not knocked.suspected
    assert knocked.t_s is None
    assert knocked.score < fell.score


def test_simulated_falls_pass_and_clapping_does_not() -> None:
    """A smoke check on the simulator's motions, not a validation (that is on real data)."""
    assert MODEL.early is not None
    rng = np.random.default_rng(11)
    falls = [
        motion.fall(rng, direction="sideways", origin=o, long_lie=False)
        for o in ("standing", "chair", "bed")
        for _ in range(10)
    ]
    passed = sum(screen_early(*_early_part(s), MODEL.early).suspected for s in falls)
    assert passed >= 24  # of 30; measured 0.88-0.99 per origin on 200 each (docs/falls.md)
    claps = [motion.adl(rng, "clapping") for _ in range(10)]
    assert not any(_suspected(s, MODEL.early) for s in claps)


def test_cut_early_keeps_the_bands_upload_around_the_strongest_sample() -> None:
    t = np.arange(0.0, 10.0, 0.02)
    acc = np.tile([0.0, 0.0, 1.0], (t.size, 1))
    acc[300] = [0.0, 0.0, 4.0]  # 6.0 s
    acc[490] = [0.0, 0.0, 9.0]  # 9.8 s: too late for the 0.8 s after it
    cut = cut_early(t, acc)
    assert cut is not None
    tc, _, peak = cut
    assert peak == pytest.approx(4.0)
    assert tc[0] == pytest.approx(3.5)
    assert tc[-1] == pytest.approx(6.8)


def test_the_engine_raises_a_suspected_fall_from_the_early_model() -> None:
    t, acc = _window(5.0, True, np.random.default_rng(8))
    window = ImuWindow(
        device_id="band-1",
        seq=1,
        ts=int(NOW.timestamp() * 1000),
        t_ms=[round(x * 1000) for x in t],
        ax=acc[:, 0].tolist(),
        ay=acc[:, 1].tolist(),
        az=acc[:, 2].tolist(),
        trigger="impact",
    )
    state, events = step_imu(FallsState(), Profile(7), window, MODEL, NOW)
    assert len(events) == 1
    assert state.episode is not None
    assert state.episode.sources == {"screen"}
    assert state.episode.score is not None
    assert state.episode.score >= MODEL.early.threshold
