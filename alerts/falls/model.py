"""The shipped fall model as inspectable data, and pure numpy scoring.

``model.json`` holds everything: feature names, winsorising bounds, scaler,
logistic-regression coefficients, the decision threshold, how it was trained
and how it validated. :func:`detect_fall` is the one entry point shared by the
offline CLI and the live alert engine; it needs numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from alerts.falls.early import EARLY_FEATURE_NAMES, tail_features
from alerts.falls.features import FEATURE_NAMES, candidate_features, samples_signal
from alerts.falls.signal import FloatArray, Samples, clean_samples

MODEL_FORMAT: Final = "eldercare-fall-model/1"
DEFAULT_MODEL_PATH: Final = Path(__file__).with_name("model.json")
DEFAULT_EARLY_MODEL_PATH: Final = Path(__file__).with_name("early_model.json")


class FallModelError(ValueError):
    """A model file that cannot be used, with the reason."""


@dataclass(frozen=True, slots=True)
class FallDecision:
    """The detector's verdict on one window; ``t_s`` is the impact time if a fall."""

    fall: bool
    t_s: float | None
    score: float

    def __post_init__(self) -> None:
        if self.fall and self.t_s is None:
            raise ValueError("a fall decision needs the impact time")
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")


def _vector(raw: Any, name: str, size: int) -> FloatArray:
    arr = np.asarray(raw, dtype=np.float64)
    if arr.shape != (size,) or not np.all(np.isfinite(arr)):
        raise FallModelError(f"{name} must be {size} finite numbers")
    return arr


def _check_names(
    names: tuple[str, ...], expected: tuple[str, ...] = FEATURE_NAMES
) -> tuple[str, ...]:
    if names != expected:
        raise FallModelError(
            f"model features {list(names)} do not match the code's {list(expected)}"
        )
    return names


@dataclass(frozen=True, slots=True)
class FallModel:
    """Logistic regression over winsorised, standardised impact features.

    The full-window model uses ``FEATURE_NAMES``; the early-window model of
    the fast path (:mod:`alerts.falls.early`) uses ``EARLY_FEATURE_NAMES`` and
    travels with the full-window model as ``early`` (None: the fast path falls
    back to the rule screen).
    """

    feature_names: tuple[str, ...]
    clip_low: FloatArray
    clip_high: FloatArray
    mean: FloatArray
    scale: FloatArray
    coefficients: FloatArray
    intercept: float
    threshold: float
    provenance: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    early: FallModel | None = None
    # For a model whose ``threshold`` is a screen's (the early model's: a suspicion
    # that the whole window confirms or retracts), the threshold of a final decision,
    # taken when no whole window will follow (a window that ends right after its impact).
    decision_threshold: float | None = None

    def __post_init__(self) -> None:
        k = len(self.feature_names)
        if self.feature_names != EARLY_FEATURE_NAMES:
            _check_names(self.feature_names)
        if self.early is not None:
            _check_names(self.early.feature_names, EARLY_FEATURE_NAMES)
        for name in ("clip_low", "clip_high", "mean", "scale", "coefficients"):
            _vector(getattr(self, name), name, k)
        if np.any(self.scale <= 0.0):
            raise FallModelError("scale must be positive")
        if np.any(self.clip_low > self.clip_high):
            raise FallModelError("clip_low must not exceed clip_high")
        for name in ("threshold", "decision_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 < value < 1.0:
                raise FallModelError(f"{name} must be in (0, 1), got {value}")

    def score(self, features: npt.ArrayLike) -> FloatArray:
        """Fall probability for each feature row (k, n_features) -> (k,)."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float64))
        z = (np.clip(x, self.clip_low, self.clip_high) - self.mean) / self.scale
        logit = z @ self.coefficients + self.intercept
        out: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))
        return out

    def to_json(self) -> dict[str, Any]:
        decision = (
            {}
            if self.decision_threshold is None
            else {"decision_threshold": self.decision_threshold}
        )
        return {
            "format": MODEL_FORMAT,
            "kind": "logistic_regression",
            "feature_names": list(self.feature_names),
            "clip_low": self.clip_low.tolist(),
            "clip_high": self.clip_high.tolist(),
            "scaler": {"mean": self.mean.tolist(), "scale": self.scale.tolist()},
            "coefficients": self.coefficients.tolist(),
            "intercept": self.intercept,
            "threshold": self.threshold,
            **decision,
            "provenance": self.provenance,
            "validation": self.validation,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], expected: tuple[str, ...] = FEATURE_NAMES) -> FallModel:
        if doc.get("format") != MODEL_FORMAT:
            raise FallModelError(f"unknown model format {doc.get('format')!r}")
        try:
            names = _check_names(tuple(str(n) for n in doc["feature_names"]), expected)
            k = len(names)
            return cls(
                feature_names=names,
                clip_low=_vector(doc["clip_low"], "clip_low", k),
                clip_high=_vector(doc["clip_high"], "clip_high", k),
                mean=_vector(doc["scaler"]["mean"], "scaler.mean", k),
                scale=_vector(doc["scaler"]["scale"], "scaler.scale", k),
                coefficients=_vector(doc["coefficients"], "coefficients", k),
                intercept=float(doc["intercept"]),
                threshold=float(doc["threshold"]),
                decision_threshold=(
                    None
                    if doc.get("decision_threshold") is None
                    else float(doc["decision_threshold"])
                ),
                provenance=dict(doc.get("provenance", {})),
                validation=dict(doc.get("validation", {})),
            )
        except (KeyError, TypeError) as exc:
            raise FallModelError(f"model JSON is missing or mistypes {exc}") from exc


def _read(source: Path) -> dict[str, Any]:
    try:
        doc = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FallModelError(f"cannot read model {source}: {exc}") from exc
    if not isinstance(doc, dict):
        raise FallModelError(f"model {source} is not a JSON object")
    return doc


def load_model(path: Path | None = None, early_path: Path | None = None) -> FallModel:
    """Read a model JSON (default: the packaged ``model.json``) and its early-window model.

    The early model comes from ``early_path``, or with the packaged model from
    the packaged ``early_model.json``; a custom ``path`` without ``early_path``
    has none (the fast path then uses the rule screen).
    """
    model = FallModel.from_json(_read(DEFAULT_MODEL_PATH if path is None else path))
    early_source = early_path or (DEFAULT_EARLY_MODEL_PATH if path is None else None)
    if early_source is None:
        return model
    early = FallModel.from_json(_read(early_source), expected=EARLY_FEATURE_NAMES)
    return replace(model, early=early)


def _on_scale(score: float, own: float, target: float) -> float:
    """``score`` of a model with threshold ``own`` mapped monotonically onto a scale
    whose threshold is ``target`` (piecewise linear; 0 and 1 stay)."""
    if score < own:
        return score * target / own
    return target + (score - own) * (1.0 - target) / (1.0 - own)


def tail_score(samples: Samples, model: FallModel) -> tuple[float, float] | None:
    """(score on the full model's scale, impact time) of an impact too close to the
    window's end for the full model, judged by the early model at its decision
    threshold; None if there is no such impact or no early model to judge it."""
    early = model.early
    if early is None or early.decision_threshold is None:
        return None
    feats = tail_features(samples)
    if feats is None:
        return None
    own = float(early.score(feats.row)[0])
    return _on_scale(own, early.decision_threshold, model.threshold), feats.t_s


def detect_fall(
    t_s: npt.ArrayLike, acc_g: npt.ArrayLike, model: FallModel, *, judge_tail: bool = True
) -> FallDecision:
    """Decide whether a wrist window holds a fall, and when the impact was.

    ``t_s`` (n,) in seconds, any rate and spacing; ``acc_g`` (n, 3) in g with
    gravity. Raises :class:`~alerts.falls.signal.FallInputError` on input that
    cannot be scored. Pure: same input, same decision.

    The full model judges every impact with at least ``MIN_POST_S`` of window
    after it. An impact closer to the end (a recording cut off right after a fall)
    is judged by the early model at its decision threshold (:func:`tail_score`),
    unless ``judge_tail`` is False. The live engine passes False: it sends an
    impact's early part to its screen itself (``alerts.detectors.falls.step_imu``),
    and a whole window runs at least 4 s past its impact (docs/protocol.md). The
    score is on the full model's scale either way: ``fall == (score >= threshold)``.
    """
    samples = clean_samples(t_s, acc_g)  # once, for both models
    candidates = candidate_features(samples_signal(samples))
    score, at = 0.0, None
    if candidates.index.size:
        scores = model.score(candidates.features)
        best = int(np.argmax(scores))
        score, at = float(scores[best]), float(candidates.t_s[best])
    tail = tail_score(samples, model) if judge_tail else None
    if tail is not None and tail[0] > score:
        score, at = tail
    fall = score >= model.threshold
    return FallDecision(fall=fall, t_s=at if fall else None, score=score)
