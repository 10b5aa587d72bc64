"""bench/falls_external.py reads WEDA-FALL's, SmartFallMM's and FallAllD's layouts and units."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.falls_external import main
from tests.unit.test_falls_detector import fall_window, still_window, times

G = 9.80665
START = datetime(2022, 7, 20, 15, 16, 0)


def write_accel(path: Path, t: np.ndarray, acc_g: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["accel_time_list,accel_x_list,accel_y_list,accel_z_list"]
    rows += [
        f"{ti:.3f},{x:.3f},{y:.3f},{z:.3f}" for ti, (x, y, z) in zip(t, acc_g * G, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


def stamp(t: float, sep: str) -> str:
    return (START + timedelta(seconds=float(t))).isoformat(sep=sep, timespec="milliseconds")


def write_watch(path: Path, t: np.ndarray, acc_g: np.ndarray) -> None:
    """No header; local date-time, m/s^2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        f"{stamp(ti, ' ')},{x:.5f},{y:.5f},{z:.5f}"
        for ti, (x, y, z) in zip(t, acc_g * G, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


def write_meta(path: Path, t: np.ndarray, acc_g: np.ndarray) -> None:
    """No header; epoch ms as a spreadsheet left it, date-time, elapsed s, g."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        f"1.65843E+12,{stamp(ti, 'T')},{ti:.2f},{x:.3f},{y:.3f},{z:.3f}"
        for ti, (x, y, z) in zip(t, acc_g, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")


def figures_of(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[dict[str, Any], str]:
    assert main(argv) == 0
    out = capsys.readouterr()
    return json.loads(out.out.splitlines()[-1]), out.err


def test_weda_falls_and_adls_in_m_per_s2_are_scored_by_activity_and_age(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = times(50.0)
    rate = tmp_path / "dataset" / "50Hz"
    write_accel(rate / "F01" / "U01_R01_accel.csv", t, fall_window(t))
    write_accel(rate / "D01" / "U01_R01_accel.csv", t, still_window(t))
    write_accel(rate / "D01" / "U21_R01_accel.csv", t, still_window(t) + 0.01)
    (rate / "D01" / "U21_R01_gyro.csv").write_text("not,an,accelerometer\n")
    (rate / "D04").mkdir()
    (rate / "D04" / "U22_R01_accel.csv").write_text("accel_time_list,x,y,z\n0.0,0,0,9.8\n")

    figures, err = figures_of(capsys, [str(tmp_path)])
    assert (figures["falls"], figures["adls"]) == (1, 2)
    assert (figures["sensitivity"], figures["specificity"]) == (1.0, 1.0)
    assert (figures["specificity_older"], figures["specificity_younger"]) == (1.0, 1.0)
    assert figures["flagged_per_activity"] == {"D01": "0/2", "F01": "1/1"}
    assert (figures["errors"], figures["repeated_files"]) == (1, 0)
    assert "D04/U22_R01_accel.csv: too few valid samples" in err


@pytest.mark.parametrize(("device", "write"), [("watch", write_watch), ("meta_wrist", write_meta)])
def test_smartfallmm_devices_are_read_in_their_units_and_repeated_files_count_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str, write: Any
) -> None:
    t = times(32.0)
    young = tmp_path / "young" / "accelerometer" / device
    old = tmp_path / "old" / "accelerometer" / device
    write(young / "S29A10T01.csv", t, fall_window(t))
    write(young / "S29A10T02.csv", t, fall_window(t))  # the same bytes: scored once
    write(young / "S29A01T01.csv", t, still_window(t))
    write(old / "S02A01T01.csv", t, still_window(t) + 0.01)
    write(old / "S02A04T01.csv", t[:10], still_window(t[:10]) + 0.02)  # too short
    (old / "notes.csv").write_text("not,a,recording\n")

    figures, err = figures_of(capsys, [str(tmp_path), "--device", device])
    assert (figures["falls"], figures["adls"]) == (1, 2)
    assert (figures["sensitivity"], figures["specificity"]) == (1.0, 1.0)
    assert (figures["specificity_older"], figures["specificity_younger"]) == (1.0, 1.0)
    assert figures["flagged_per_activity"] == {"A01": "0/2", "A10": "1/1"}
    assert (figures["errors"], figures["repeated_files"]) == (1, 1)
    assert f"{device}/S02A04T01.csv: window too short" in err


def write_fallalld(path: Path, acc_g: np.ndarray) -> None:
    """No header; integer counts of 0.244 mg at 238 Hz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = np.rint(acc_g / 0.000244).astype(int)
    path.write_text("\n".join(f"{x},{y},{z}" for x, y, z in counts) + "\n")


def test_fallalld_wrist_counts_at_238_hz_are_read_in_g(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = np.arange(0.0, 20.0, 1 / 238.0)  # the release's steady 238 Hz, 20 s
    base = tmp_path / "FallAllD"
    write_fallalld(base / "S01_D2_A101_T01_A.dat", fall_window(t))
    write_fallalld(base / "S01_D2_A001_T01_A.dat", still_window(t))
    write_fallalld(base / "S01_D1_A101_T01_A.dat", fall_window(t))  # the neck device: not read
    write_fallalld(base / "S01_D2_A101_T01_G.dat", fall_window(t))  # the gyroscope: not read
    write_fallalld(base / "S02_D2_A002_T01_A.dat", still_window(t) * 9.80665)  # in m/s^2

    figures, err = figures_of(capsys, [str(tmp_path)])
    assert (figures["falls"], figures["adls"]) == (1, 1)
    assert (figures["sensitivity"], figures["specificity"]) == (1.0, 1.0)
    assert figures["flagged_per_activity"] == {"A001": "0/1", "A101": "1/1"}
    assert figures["errors"] == 1
    assert "S02_D2_A002_T01_A.dat: " in err
    assert "not in g" in err


def test_a_folder_of_neither_layout_is_refused_with_the_layouts_expected(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="neither WEDA-FALL"):
        main([str(tmp_path)])
