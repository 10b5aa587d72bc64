"""bench/falls_external.py reads WEDA-FALL's layout and units and reports the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.falls_external import main
from tests.unit.test_falls_detector import fall_window, still_window, times


def write_accel(path: Path, t: np.ndarray, acc_g: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["accel_time_list,accel_x_list,accel_y_list,accel_z_list"]
    rows += [
        f"{ti:.3f},{x:.3f},{y:.3f},{z:.3f}"
        for ti, (x, y, z) in zip(t, acc_g * 9.80665, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


def test_falls_and_adls_in_m_per_s2_are_scored_by_activity_and_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = times(50.0)
    rate = tmp_path / "dataset" / "50Hz"
    write_accel(rate / "F01" / "U01_R01_accel.csv", t, fall_window(t))
    write_accel(rate / "D01" / "U01_R01_accel.csv", t, still_window(t))
    write_accel(rate / "D01" / "U21_R01_accel.csv", t, still_window(t))
    (rate / "D01" / "U21_R01_gyro.csv").write_text("not,an,accelerometer\n")
    (rate / "D04").mkdir()
    (rate / "D04" / "U22_R01_accel.csv").write_text("accel_time_list,x,y,z\n0.0,0,0,9.8\n")

    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr()
    figures = json.loads(out.out.splitlines()[-1])
    assert (figures["falls"], figures["adls"]) == (1, 2)
    assert (figures["sensitivity"], figures["specificity"]) == (1.0, 1.0)
    assert (figures["specificity_older"], figures["specificity_younger"]) == (1.0, 1.0)
    assert figures["flagged_per_activity"] == {"D01": "0/2", "F01": "1/1"}
    assert figures["errors"] == 1
    assert "D04/U22_R01_accel.csv: too few valid samples" in out.err
