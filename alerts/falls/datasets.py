"""Loaders for the two real wrist datasets used to train and validate the detector.

Both return :class:`Recording` values: timestamps in seconds and acceleration
in g *with gravity*, whatever the source format. The datasets are read in
place (``ELDERCARE_DATASETS``, default ``<repo>/../shared/datasets``) and never
copied into the repository.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from scipy.io import loadmat

from alerts.falls.recording import read_csv
from alerts.falls.signal import FloatArray

UMAFALL: Final = "umafall-wrist"
HIFD: Final = "hifd-wrist"
DATASETS_ENV: Final = "ELDERCARE_DATASETS"


@dataclass(frozen=True, slots=True)
class Recording:
    """One labelled wrist window from a real dataset."""

    dataset: str
    subject: str
    activity: str
    fall: bool
    file: str
    t_s: FloatArray
    acc_g: FloatArray


def datasets_root() -> Path:
    """Where the datasets live: ``$ELDERCARE_DATASETS`` or ``<repo>/../shared/datasets``."""
    env = os.environ.get(DATASETS_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def iter_umafall(root: Path) -> Iterator[Recording]:
    """UMAFall wrist CSVs: already ``t_s,ax_g,ay_g,az_g`` with gravity."""
    base = root / UMAFALL
    with (base / "index.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        t_s, acc_g = read_csv(base / "recordings" / row["file"])
        yield Recording(
            dataset=UMAFALL,
            subject=f"uma{int(row['subject']):02d}",
            activity=row["activity"],
            fall=row["label"] == "fall",
            file=row["file"],
            t_s=t_s,
            acc_g=acc_g,
        )


def gravity_from_quaternion(quat_wxyz: FloatArray) -> FloatArray:
    """Gravity (+1 g up) in the sensor frame for body-to-world quaternions.

    With ``R(q)`` mapping sensor to world coordinates, a resting accelerometer
    reads ``R(q)^T @ [0, 0, 1]``, the third row of ``R(q)``. That ``q`` maps
    sensor to world was checked against the HIFD gyroscope: the body-frame
    increments ``R0^T R1`` track the measured angular rate (|r| 0.7-0.8) while
    the world-frame ones do not (|r| < 0.5).
    """
    q = quat_wxyz / np.linalg.norm(quat_wxyz, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        (2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)), axis=1
    )


def load_hifd_file(path: Path, *, gravity: bool = True) -> tuple[FloatArray, FloatArray]:
    """One HIFD .mat file as (t_s, acc_g with gravity put back); ``gravity=False``: the
    linear acceleration the band itself reports."""
    mat = loadmat(str(path))
    linear = np.hstack([np.asarray(mat[k], dtype=np.float64) for k in ("ax", "ay", "az")])
    quat = np.hstack([np.asarray(mat[k], dtype=np.float64) for k in ("w", "x", "y", "z")])
    clock = np.asarray(mat["time"], dtype=np.float64)
    seconds = clock[:, 3] * 3600.0 + clock[:, 4] * 60.0 + clock[:, 5]
    seconds = np.where(seconds < seconds[0], seconds + 86400.0, seconds)  # midnight
    return seconds - seconds[0], linear + gravity_from_quaternion(quat) if gravity else linear


def iter_hifd(root: Path) -> Iterator[Recording]:
    """HIFD .mat files, gravity restored from the orientation quaternion."""
    base = root / HIFD
    with (base / "index.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        t_s, acc_g = load_hifd_file(base / row["file"])
        yield Recording(
            dataset=HIFD,
            subject=f"hifd{int(row['subject']):02d}",
            activity=row["scenario"],
            fall=row["label"] == "fall",
            file=row["file"],
            t_s=t_s,
            acc_g=acc_g,
        )


def load_all(root: Path, names: tuple[str, ...] = (UMAFALL, HIFD)) -> list[Recording]:
    """Every recording of the named datasets, in index order."""
    loaders = {UMAFALL: iter_umafall, HIFD: iter_hifd}
    return [rec for name in names for rec in loaders[name](root)]


def available(root: Path) -> bool:
    """True when both dataset indexes are present under ``root``."""
    return all((root / name / "index.csv").is_file() for name in (UMAFALL, HIFD))
