"""The deployed fall detector on wrist datasets it was never trained on.

Three public datasets, read from a local copy; evaluation only: nothing here
trains or tunes, and the model never sees these people or these devices.

- WEDA-FALL (Fitbit Sense, 50 Hz with batch timestamps, m/s^2 with gravity;
  14 young volunteers' falls and ADLs, 11 people aged 77-95 doing ADLs only):
  ``<root>/dataset/<rate>/<code>/U<user>_R<trial>_accel.csv``, codes
  ``F01..F08`` falls and ``D01..D11`` everyday activities.
- SmartFallMM (a smartwatch at ~32 Hz stamped on delivery, m/s^2; a MetaMotion
  wrist sensor at 50 Hz in g, set to +-2 g; young volunteers' falls and ADLs,
  older people's ADLs): ``<root>/{young,old}/accelerometer/<device>/
  S<subject>A<activity>T<trial>.csv`` without header, ``A01..A09`` everyday
  activities and ``A10..A14`` falls. Files whose bytes repeat an earlier file
  are scored once.
- FallAllD (Saleh et al., 2021; a wrist device, D2, at 238 Hz in raw counts of
  an LSM9DS1 at +-8 g, 0.244 mg per count; 15 volunteers aged 21-53, 13 with
  wrist recordings, 35 kinds of fall and 44 everyday activities, 20 s each):
  ``<root>/S<subject>_D2_A<activity>_T<trial>_A.dat`` (or under ``<root>/FallAllD/``),
  three integer columns without header, ``A001..A044`` everyday activities and
  ``A101..A135`` falls. Public on GitHub in a copy of the whole release:
  Assistive-Technology-Create-Team/plumshum.github.io, folder ``FallAllD/``.

Each recording is converted to g and scored by ``detect_fall`` with the
packaged model, as ``eldercare falls score`` would score it.

    .venv/bin/python bench/falls_external.py PATH/TO/WEDA-FALL [--rate 50Hz]
    .venv/bin/python bench/falls_external.py PATH/TO/SmartFallMM [--device watch]
    .venv/bin/python bench/falls_external.py PATH/TO/FallAllD

Prints sensitivity, specificity and AUC, flagged counts per activity and
ADL specificity by age group; the figures are the last line of JSON.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.falls import FallInputError, detect_fall, load_model
from alerts.falls.model import FallModel
from alerts.falls.signal import FloatArray
from alerts.falls.train import auc
from eldercare.protocol import STANDARD_GRAVITY

WEDA_NAME: Final = re.compile(r"U(?P<user>\d+)_R(?P<trial>\d+)_accel\.csv")
WEDA_OLDER_FROM_USER: Final = 21  # WEDA-FALL numbers its older volunteers from 21
SMARTFALL_NAME: Final = re.compile(r"S(?P<subject>\d+)A(?P<activity>\d+)T(?P<trial>\d+)\.csv")
SMARTFALL_FIRST_FALL: Final = 10  # A10..A14 are falls
FALLALLD_NAME: Final = re.compile(r"S(?P<subject>\d+)_D2_A(?P<activity>\d+)_T(?P<trial>\d+)_A\.dat")
FALLALLD_FIRST_FALL: Final = 101  # A101..A135 are falls
FALLALLD_RATE_HZ: Final = 238.0
FALLALLD_G_PER_COUNT: Final = 0.000244  # LSM9DS1 at +-8 g (the release's own plot script)

Reader = Callable[[str], tuple[FloatArray, FloatArray]]  # a file's text -> (t_s, acc_g)


@dataclass(frozen=True, slots=True)
class Entry:
    """One recording to score: where it is, how to read it, what it is."""

    path: Path
    read: Reader
    activity: str
    fall: bool
    older: bool


@dataclass(frozen=True, slots=True)
class Scored:
    activity: str
    older: bool
    fall: bool
    decided: bool
    score: float


def _rows(text: str) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(text, newline="")) if row]


def read_weda(text: str) -> tuple[FloatArray, FloatArray]:
    """``accel_time_list`` (s) and the three axes in m/s^2, as (t_s, acc_g)."""
    rows = _rows(text)
    values = np.array([[float(cell) for cell in row[:4]] for row in rows[1:]], dtype=np.float64)
    return values[:, 0], values[:, 1:4] / STANDARD_GRAVITY


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.strip()).timestamp()


def read_smartfall_watch(text: str) -> tuple[FloatArray, FloatArray]:
    """``time, x, y, z``: a local date-time and m/s^2, as (t_s, acc_g)."""
    rows = _rows(text)
    t = np.array([_seconds(row[0]) for row in rows], dtype=np.float64)
    acc = np.array([[float(cell) for cell in row[1:4]] for row in rows], dtype=np.float64)
    return t, acc / STANDARD_GRAVITY


def read_smartfall_meta(text: str) -> tuple[FloatArray, FloatArray]:
    """``epoch ms, time, elapsed s, x, y, z`` in g; the date-time column is the
    one to trust (some files carry the epoch in spreadsheet notation, 1.65843E+12)."""
    rows = _rows(text)
    t = np.array([_seconds(row[1]) for row in rows], dtype=np.float64)
    acc = np.array([[float(cell) for cell in row[3:6]] for row in rows], dtype=np.float64)
    return t, acc


def read_fallalld(text: str) -> tuple[FloatArray, FloatArray]:
    """Three integer columns of counts at a steady 238 Hz, as (t_s, acc_g)."""
    counts = np.array([[float(cell) for cell in row[:3]] for row in _rows(text)], dtype=np.float64)
    return np.arange(counts.shape[0]) / FALLALLD_RATE_HZ, counts * FALLALLD_G_PER_COUNT


SMARTFALL_READERS: Final[dict[str, Reader]] = {
    "watch": read_smartfall_watch,
    "meta_wrist": read_smartfall_meta,
}


def weda_entries(root: Path, rate: str) -> Iterator[Entry]:
    for path in sorted((root / "dataset" / rate).glob("[DF][0-9][0-9]/U*_accel.csv")):
        match = WEDA_NAME.fullmatch(path.name)
        if match is None:
            continue
        activity = path.parent.name
        yield Entry(
            path=path,
            read=read_weda,
            activity=activity,
            fall=activity.startswith("F"),
            older=int(match["user"]) >= WEDA_OLDER_FROM_USER,
        )


def smartfall_entries(root: Path, device: str) -> Iterator[Entry]:
    read = SMARTFALL_READERS[device]
    for group in ("young", "old"):
        for path in sorted((root / group / "accelerometer" / device).glob("S*A*T*.csv")):
            match = SMARTFALL_NAME.fullmatch(path.name)
            if match is None:
                continue
            activity = int(match["activity"])
            yield Entry(
                path=path,
                read=read,
                activity=f"A{activity:02d}",
                fall=activity >= SMARTFALL_FIRST_FALL,
                older=group == "old",
            )


def fallalld_entries(root: Path) -> Iterator[Entry]:
    base = root / "FallAllD" if (root / "FallAllD").is_dir() else root
    for path in sorted(base.glob("S*_D2_A*_T*_A.dat")):
        match = FALLALLD_NAME.fullmatch(path.name)
        if match is None:
            continue
        activity = int(match["activity"])
        yield Entry(
            path=path,
            read=read_fallalld,
            activity=f"A{activity:03d}",
            fall=activity >= FALLALLD_FIRST_FALL,
            older=False,  # nobody over 53
        )


def score_all(entries: Iterator[Entry], model: FallModel) -> tuple[list[Scored], list[str], int]:
    """Scores, errors, and how many files repeated an earlier file's bytes (scored once).
    Each file is read once: its bytes are hashed, then decoded and parsed."""
    scored: list[Scored] = []
    errors: list[str] = []
    seen: set[str] = set()
    repeats = 0
    for entry in entries:
        raw = entry.path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if digest in seen:
            repeats += 1
            continue
        seen.add(digest)
        name = f"{entry.path.parent.name}/{entry.path.name}"
        try:
            decision = detect_fall(*entry.read(raw.decode("utf-8-sig")), model)
        except (FallInputError, ValueError, IndexError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        scored.append(
            Scored(
                activity=entry.activity,
                older=entry.older,
                fall=entry.fall,
                decided=decision.fall,
                score=decision.score,
            )
        )
    return scored, errors, repeats


def summary(scored: list[Scored], errors: list[str], repeats: int) -> dict[str, Any]:
    if not scored:
        raise SystemExit(
            "no recordings found: expected <root>/dataset/<rate>/<code>/U*_accel.csv (WEDA-FALL)"
            " or <root>/{young,old}/accelerometer/<device>/S*A*T*.csv (SmartFallMM)"
            " or <root>/S*_D2_A*_T*_A.dat (FallAllD)"
        )
    fall = np.array([s.fall for s in scored])
    decided = np.array([s.decided for s in scored])
    older = np.array([s.older for s in scored])
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
        "repeated_files": repeats,
    }


def entries_for(root: Path, rate: str, device: str) -> Iterator[Entry]:
    """WEDA-FALL when ``root`` holds ``dataset/``, SmartFallMM when it holds ``young/``,
    FallAllD when it holds its wrist files."""
    if (root / "dataset").is_dir():
        return weda_entries(root, rate)
    if (root / "young").is_dir() or (root / "old").is_dir():
        return smartfall_entries(root, device)
    if any(fallalld_entries(root)):
        return fallalld_entries(root)
    raise SystemExit(
        f"{root}: neither WEDA-FALL (dataset/), SmartFallMM (young/, old/)"
        " nor FallAllD (S*_D2_A*_T*_A.dat)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("root", type=Path, help="a WEDA-FALL, SmartFallMM or FallAllD checkout")
    ap.add_argument("--rate", default="50Hz", help="WEDA-FALL's rate folder (default 50Hz)")
    ap.add_argument(
        "--device",
        default="watch",
        choices=sorted(SMARTFALL_READERS),
        help="SmartFallMM's wrist device (default watch)",
    )
    args = ap.parse_args(argv)
    scored, errors, repeats = score_all(
        entries_for(args.root, args.rate, args.device), load_model()
    )
    for line in errors:
        print(line, file=sys.stderr)
    print(json.dumps(summary(scored, errors, repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
