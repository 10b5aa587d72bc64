"""The deployed fall detector on a wrist dataset it was never trained on.

Reads a local copy of WEDA-FALL (Fitbit Sense, 50 Hz with batch timestamps,
m/s^2 with gravity; 14 young volunteers' falls and ADLs, 11 people aged 77-95
doing ADLs only): ``<root>/dataset/<rate>/<code>/U<user>_R<trial>_accel.csv``,
codes ``F01..F08`` falls and ``D01..D11`` everyday activities. Each recording
is converted to g and scored by ``detect_fall`` with the packaged model, as
``eldercare falls score`` would score it. Evaluation only: nothing here trains
or tunes; the model never sees these people or this device.

    .venv/bin/python bench/falls_external.py PATH/TO/WEDA-FALL [--rate 50Hz]

Prints sensitivity, specificity and AUC, flagged counts per activity and
ADL specificity by age group; the figures are the last line of JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.falls import FallInputError, detect_fall, load_model
from alerts.falls.model import FallModel
from alerts.falls.signal import STANDARD_GRAVITY, FloatArray
from alerts.falls.train import auc

NAME: Final = re.compile(r"U(?P<user>\d+)_R(?P<trial>\d+)_accel\.csv")
OLDER_FROM_USER: Final = 21  # WEDA-FALL numbers its older volunteers from 21


@dataclass(frozen=True, slots=True)
class Scored:
    activity: str
    user: int
    fall: bool
    decided: bool
    score: float


def read_accel(path: Path) -> tuple[FloatArray, FloatArray]:
    """``accel_time_list`` (s) and the three axes in m/s^2, as (t_s, acc_g)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row]
    values = np.array([[float(cell) for cell in row[:4]] for row in rows[1:]], dtype=np.float64)
    return values[:, 0], values[:, 1:4] / STANDARD_GRAVITY


def score_all(root: Path, rate: str, model: FallModel) -> tuple[list[Scored], list[str]]:
    scored: list[Scored] = []
    errors: list[str] = []
    for path in sorted((root / "dataset" / rate).glob("[DF][0-9][0-9]/U*_accel.csv")):
        match = NAME.fullmatch(path.name)
        if match is None:
            continue
        activity = path.parent.name
        try:
            decision = detect_fall(*read_accel(path), model)
        except (FallInputError, ValueError) as exc:
            errors.append(f"{activity}/{path.name}: {exc}")
            continue
        scored.append(
            Scored(
                activity=activity,
                user=int(match["user"]),
                fall=activity.startswith("F"),
                decided=decision.fall,
                score=decision.score,
            )
        )
    return scored, errors


def summary(scored: list[Scored], errors: list[str]) -> dict[str, Any]:
    if not scored:
        raise SystemExit("no recordings found: expected <root>/dataset/<rate>/<code>/U*_accel.csv")
    fall = np.array([s.fall for s in scored])
    decided = np.array([s.decided for s in scored])
    older = np.array([s.user >= OLDER_FROM_USER for s in scored])
    per_activity: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for s in scored:
        per_activity[s.activity][0] += int(s.decided)
        per_activity[s.activity][1] += 1

    def specificity(rows: np.ndarray) -> float | None:
        adls = rows & ~fall
        return round(float(np.mean(~decided[adls])), 4) if adls.any() else None

    return {
        "sensitivity": round(float(np.mean(decided[fall])), 4) if fall.any() else None,
        "specificity": specificity(np.ones_like(fall)),
        "auc": round(auc(np.array([s.score for s in scored]), fall), 4) if fall.any() else None,
        "falls": int(fall.sum()),
        "adls": int((~fall).sum()),
        "specificity_older": specificity(older),
        "specificity_younger": specificity(~older),
        "flagged_per_activity": {k: f"{v[0]}/{v[1]}" for k, v in sorted(per_activity.items())},
        "errors": len(errors),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("root", type=Path, help="a WEDA-FALL checkout (holds dataset/)")
    ap.add_argument("--rate", default="50Hz", help="the dataset's rate folder (default 50Hz)")
    args = ap.parse_args(argv)
    scored, errors = score_all(args.root, args.rate, load_model())
    for line in errors:
        print(line, file=sys.stderr)
    print(json.dumps(summary(scored, errors)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
