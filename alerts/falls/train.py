"""Train the fall model and validate it on unseen people and unseen devices.

``python -m alerts.falls.train`` reads both wrist datasets in place, prints
the validation figures as JSON and writes ``alerts/falls/model.json``.

Protocol (all thresholds chosen without looking at the test people):
- leave-one-subject-out within each dataset and pooled over both;
- cross-dataset: train on one dataset, test on the other;
- in every split the decision threshold comes from grouped out-of-fold scores
  on the *training* subjects only, then is applied unchanged to the test ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from alerts.falls.datasets import HIFD, UMAFALL, Recording, datasets_root, load_all
from alerts.falls.features import FEATURE_NAMES, Candidates, candidate_features, window_signal
from alerts.falls.model import DEFAULT_MODEL_PATH, FallModel
from alerts.falls.signal import COMMON_RANGE_G, INTERNAL_RATE_HZ, SMOOTHING_S, FloatArray

BoolArray = npt.NDArray[np.bool_]
C_REGULARISATION: Final = 0.3
INNER_FOLDS: Final = 5
TARGET_SENSITIVITY: Final = 0.95
CLIP_QUANTILES: Final = (0.01, 0.99)


@dataclass(frozen=True, slots=True)
class Table:
    """Candidates of every recording, with labels and subject groups."""

    candidates: tuple[Candidates, ...]
    fall: BoolArray
    subject: npt.NDArray[np.str_]
    dataset: npt.NDArray[np.str_]


def build_table(recordings: Sequence[Recording]) -> Table:
    cands = tuple(candidate_features(window_signal(r.t_s, r.acc_g)) for r in recordings)
    return Table(
        candidates=cands,
        fall=np.array([r.fall for r in recordings], dtype=bool),
        subject=np.array([r.subject for r in recordings]),
        dataset=np.array([r.dataset for r in recordings]),
    )


def training_rows(table: Table, rows: npt.NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
    """All candidates of ADL recordings (negatives) + the impact of each fall.

    A fall recording's impact is its strongest candidate (candidates come
    strongest first); its other candidates are neither falls nor ADLs and
    are left out.
    """
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    for i in rows:
        feats = table.candidates[i].features
        if table.fall[i]:
            xs.append(feats[:1])
            ys.append(np.ones(1))
        else:
            xs.append(feats)
            ys.append(np.zeros(feats.shape[0]))
    return np.vstack(xs), np.concatenate(ys)


def fit(table: Table, rows: npt.NDArray[np.intp], *, threshold: float = 0.5) -> FallModel:
    x, y = training_rows(table, rows)
    return fit_logistic(x, y, feature_names=FEATURE_NAMES, threshold=threshold, max_iter=2000)


def fit_logistic(
    x: FloatArray,
    y: npt.NDArray[Any],
    *,
    feature_names: tuple[str, ...],
    threshold: float,
    max_iter: int,
    c: float = C_REGULARISATION,
) -> FallModel:
    """Clip to training quantiles, standardise, fit a balanced logistic regression:
    the model form both the full-window and the early-window detectors ship."""
    low, high = np.quantile(x, CLIP_QUANTILES, axis=0)
    high = np.maximum(high, low)
    xc = np.clip(x, low, high)
    mean = xc.mean(axis=0)
    scale = xc.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=max_iter)
    clf.fit((xc - mean) / scale, y)
    return FallModel(
        feature_names=feature_names,
        clip_low=low,
        clip_high=high,
        mean=mean,
        scale=scale,
        coefficients=np.asarray(clf.coef_[0], dtype=np.float64),
        intercept=float(clf.intercept_[0]),
        threshold=threshold,
    )


def recording_scores(model: FallModel, table: Table, rows: npt.NDArray[np.intp]) -> FloatArray:
    """The best candidate score of each recording, as ``detect_fall`` sees it."""
    return np.array([float(np.max(model.score(table.candidates[i].features))) for i in rows])


def choose_threshold(scores: FloatArray, fall: BoolArray) -> float:
    """Maximise sensitivity + specificity; among ties, the most sensitive."""
    grid = np.unique(np.concatenate((scores, [0.5])))
    grid = grid[(grid > 0.0) & (grid < 1.0)]
    sens = np.array([np.mean(scores[fall] >= g) for g in grid])
    spec = np.array([np.mean(scores[~fall] < g) for g in grid])
    best = int(np.argmax(np.round(sens + spec, 9)))
    # Halfway to the next lower score keeps a margin for unseen people.
    lower = scores[scores < grid[best]]
    return float(0.5 * (grid[best] + lower.max())) if lower.size else float(grid[best])


def grouped_folds(groups: npt.NDArray[np.str_], n_folds: int) -> list[npt.NDArray[np.str_]]:
    unique = np.unique(groups)
    if n_folds >= unique.size:
        return [unique[i : i + 1] for i in range(unique.size)]
    return [unique[i::n_folds] for i in range(n_folds)]


def oof_scores(table: Table, rows: npt.NDArray[np.intp], n_folds: int) -> FloatArray:
    """Out-of-fold recording scores over subject folds of ``rows``."""
    out = np.zeros(rows.size)
    for held in grouped_folds(table.subject[rows], n_folds):
        test = np.isin(table.subject[rows], held)
        model = fit(table, rows[~test])
        out[test] = recording_scores(model, table, rows[test])
    return out


def fit_with_threshold(table: Table, rows: npt.NDArray[np.intp]) -> FallModel:
    """Fit on ``rows``; threshold from their own grouped out-of-fold scores."""
    inner = oof_scores(table, rows, INNER_FOLDS)
    threshold = choose_threshold(inner, table.fall[rows])
    return fit(table, rows, threshold=threshold)


def _fields(model: FallModel) -> dict[str, Any]:
    return {name: getattr(model, name) for name in FallModel.__slots__}


def auc(scores: FloatArray, fall: BoolArray) -> float:
    pos, neg = scores[fall], scores[~fall]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def figures(scores: FloatArray, fall: BoolArray, decided: BoolArray) -> dict[str, Any]:
    return {
        "sensitivity": round(float(np.mean(decided[fall])), 4),
        "specificity": round(float(np.mean(~decided[~fall])), 4),
        "auc": round(auc(scores, fall), 4),
        "falls": int(fall.sum()),
        "adls": int((~fall).sum()),
    }


LONG_WINDOW_S: Final = 60.0
LONG_PARTS: Final = 4


SEAM_S: Final = 0.5


def rotation_onto(u: FloatArray, v: FloatArray) -> FloatArray:
    """The rotation matrix that turns direction ``u`` onto direction ``v`` (Rodrigues);
    the identity when either is too short to have a direction (< 0.1 g)."""
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 0.1 or nv < 0.1:
        return np.eye(3)
    a, b = u / nu, v / nv
    axis, cos = np.cross(a, b), float(np.dot(a, b))
    if cos < -1.0 + 1e-9:  # opposite: half a turn about any axis normal to a
        normal = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        normal /= np.linalg.norm(normal)
        return np.asarray(2.0 * np.outer(normal, normal) - np.eye(3), dtype=np.float64)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.asarray(np.eye(3) + k + k @ k / (1.0 + cos), dtype=np.float64)


def chain(parts: Sequence[Recording]) -> tuple[FloatArray, FloatArray]:
    """Recordings played one after another, cut to the last ``LONG_WINDOW_S`` seconds.

    Each recording is rotated (whole; the features are rotation-invariant) so that
    it starts where the previous one left the wrist: the seam has no sudden turn,
    which no real day has and which would look like a fall's change of posture.
    """
    times: list[FloatArray] = []
    accs: list[FloatArray] = []
    offset = 0.0
    for rec in parts:
        acc = rec.acc_g
        if accs:
            end = accs[-1][times[-1] >= times[-1][-1] - SEAM_S].mean(axis=0)
            start = acc[rec.t_s <= rec.t_s[0] + SEAM_S].mean(axis=0)
            acc = acc @ rotation_onto(start, end).T
        times.append(rec.t_s - rec.t_s[0] + offset)
        accs.append(acc)
        offset = float(times[-1][-1]) + 0.05
    t_s, acc_g = np.concatenate(times), np.vstack(accs)
    keep = t_s >= t_s[-1] - LONG_WINDOW_S
    return t_s[keep], acc_g[keep]


def long_windows(
    recordings: Sequence[Recording], rows: npt.NDArray[np.intp], seed: int
) -> list[tuple[Candidates, bool]]:
    """Up to a minute of one person's day: each recording of ``rows`` last, after
    ``LONG_PARTS - 1`` of the same subject's everyday activities (fall or not as the
    last one). The seams between recordings are abrupt, so this is a stress test."""
    rng = np.random.default_rng(seed)
    adls = [i for i in rows if not recordings[i].fall]
    out: list[tuple[Candidates, bool]] = []
    for i in rows:
        others = [j for j in adls if j != i]
        if len(others) < LONG_PARTS - 1:
            continue
        before = rng.choice(others, LONG_PARTS - 1, replace=False)
        t_s, acc = chain([recordings[j] for j in before] + [recordings[i]])
        out.append((candidate_features(window_signal(t_s, acc)), recordings[i].fall))
    return out


def leave_subjects_out_long(table: Table, recordings: Sequence[Recording]) -> dict[str, Any]:
    """Pooled leave-one-subject-out on long windows of the held-out subject's own day."""
    every = np.arange(table.fall.size)
    scores: list[float] = []
    decided: list[bool] = []
    labels: list[bool] = []
    for k, held in enumerate(grouped_folds(table.subject, every.size)):
        test = np.isin(table.subject, held)
        model = fit_with_threshold(table, every[~test])
        for cands, fall in long_windows(recordings, every[test], seed=k):
            score = float(np.max(model.score(cands.features))) if cands.index.size else 0.0
            scores.append(score)
            decided.append(score >= model.threshold)
            labels.append(fall)
    return figures(np.array(scores), np.array(labels), np.array(decided))


def leave_subjects_out(table: Table, rows: npt.NDArray[np.intp]) -> dict[str, Any]:
    """Leave-one-subject-out; each fold's threshold from its training subjects."""
    scores = np.zeros(rows.size)
    decided = np.zeros(rows.size, dtype=bool)
    for held in grouped_folds(table.subject[rows], rows.size):
        test = np.isin(table.subject[rows], held)
        model = fit_with_threshold(table, rows[~test])
        scores[test] = recording_scores(model, table, rows[test])
        decided[test] = scores[test] >= model.threshold
    return figures(scores, table.fall[rows], decided)


def cross_dataset(table: Table, train: str, test: str) -> dict[str, Any]:
    model = fit_with_threshold(table, np.flatnonzero(table.dataset == train))
    rows = np.flatnonzero(table.dataset == test)
    scores = recording_scores(model, table, rows)
    result = figures(scores, table.fall[rows], scores >= model.threshold)
    return {**result, "threshold": round(model.threshold, 4)}


def validate(table: Table, recordings: Sequence[Recording]) -> dict[str, Any]:
    every = np.arange(table.fall.size)
    return {
        "loso_pooled_long_windows": leave_subjects_out_long(table, recordings),
        "loso_umafall": leave_subjects_out(table, np.flatnonzero(table.dataset == UMAFALL)),
        "loso_hifd": leave_subjects_out(table, np.flatnonzero(table.dataset == HIFD)),
        "loso_pooled": leave_subjects_out(table, every),
        "train_umafall_test_hifd": cross_dataset(table, UMAFALL, HIFD),
        "train_hifd_test_umafall": cross_dataset(table, HIFD, UMAFALL),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train and validate the wrist fall model.")
    parser.add_argument("--datasets", type=Path, default=None, help="dataset root directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="model JSON path")
    parser.add_argument("--no-validate", action="store_true", help="skip the validation runs")
    args = parser.parse_args(argv)
    root = args.datasets or datasets_root()
    recordings = load_all(root)
    table = build_table(recordings)
    every = np.arange(table.fall.size)
    validation = {} if args.no_validate else validate(table, recordings)
    model = fit_with_threshold(table, every)
    provenance = {
        "trained_on": [UMAFALL, HIFD],
        "recordings": int(every.size),
        "falls": int(table.fall.sum()),
        "subjects": int(np.unique(table.subject).size),
        "signal": f"each axis clipped to +-{COMMON_RANGE_G:g} g, {SMOOTHING_S:g} s box average, "
        f"{INTERNAL_RATE_HZ:g} Hz grid",
        "classifier": f"sklearn LogisticRegression(C={C_REGULARISATION}, class_weight=balanced)",
        "threshold_rule": "max sensitivity+specificity on subject-grouped "
        f"{INNER_FOLDS}-fold out-of-fold scores of the training subjects",
        "command": "python -m alerts.falls.train",
    }
    model = FallModel(**{**_fields(model), "provenance": provenance, "validation": validation})
    args.out.write_text(json.dumps(model.to_json(), indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps({"threshold": model.threshold, **validation}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
