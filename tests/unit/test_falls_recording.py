"""Reading wrist recordings from CSV files as tools and spreadsheets write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alerts.falls.recording import read_csv
from alerts.falls.signal import FallInputError

PLAIN = "t_s,ax_g,ay_g,az_g\n0.0,0.1,0.2,0.9\n0.05,0.3,-0.1,1.1\n0.1,-0.25,0.0,1.0\n"


def written(tmp_path: Path, text: str | bytes, name: str = "w.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


def test_read_csv(tmp_path: Path) -> None:
    text = "t_s,ax_g,ay_g,az_g\n0.0,0,0,1\n0.05,0.1,0,0.9\nbad,1,1,1\n"
    t, acc = read_csv(written(tmp_path, text))
    assert t.shape == (3,)
    assert acc.shape == (3, 3)
    np.testing.assert_array_equal(acc[1], [0.1, 0.0, 0.9])
    assert np.isnan(t[2])


@pytest.mark.parametrize(
    ("variant", "text"),
    [
        (
            "spreadsheet export: byte-order mark, CRLF, columns reordered, a gyroscope column",
            "\ufeffaz_g,gx_dps,t_s,ay_g,ax_g\r\n0.9,12,0.0,0.2,0.1\r\n"
            "1.1,-3,0.05,-0.1,0.3\r\n1.0,0,0.1,0.0,-0.25\r\n".encode(),
        ),
        (
            "semicolons and decimal commas (a European spreadsheet)",
            "t_s;ax_g;ay_g;az_g\n0,0;0,1;0,2;0,9\n0,05;0,3;-0,1;1,1\n0,1;-0,25;0,0;1,0\n",
        ),
        ("tabs", PLAIN.replace(",", "\t")),
        ("upper-case names with spaces", "T_S, AX_G, AY_G, AZ_G\n" + PLAIN.split("\n", 1)[1]),
        ("quoted names and cells", '"t_s","ax_g","ay_g","az_g"\n' + PLAIN.split("\n", 1)[1]),
        ("comment lines and blank lines before the header", "# band 42\n\n" + PLAIN),
        ("blank lines between rows", PLAIN.replace("\n0.05", "\n\n0.05")),
        (
            "quoted names and cells after a space",
            't_s, "ax_g", "ay_g", "az_g"\n0.0, "0.1", 0.2, 0.9\n0.05, 0.3, -0.1, 1.1\n'
            '0.1, -0.25, 0.0, "1.0"\n',
        ),
        (
            "a spreadsheet's Unicode text: UTF-16 with its mark, tabs, decimal commas",
            PLAIN.replace(",", "\t").replace(".", ",").encode("utf-16"),
        ),
        ("UTF-16 without a byte-order mark", PLAIN.encode("utf-16-le")),
        (
            "GBK from a Chinese-locale spreadsheet: a comment and a notes column",
            "# 腕带 42 号，测试\nt_s,ax_g,ay_g,az_g,备注\n0.0,0.1,0.2,0.9,\n"
            "0.05,0.3,-0.1,1.1,跌倒？\n0.1,-0.25,0.0,1.0,\n".encode("gbk"),
        ),
    ],
)
def test_the_same_recording_reads_the_same_from_any_common_csv_dialect(
    tmp_path: Path, variant: str, text: str | bytes
) -> None:
    want_t, want_acc = read_csv(written(tmp_path, PLAIN, "plain.csv"))
    got_t, got_acc = read_csv(written(tmp_path, text))
    np.testing.assert_array_equal(got_t, want_t, err_msg=variant)
    np.testing.assert_array_equal(got_acc, want_acc, err_msg=variant)


def test_a_row_cut_off_costs_that_row_only(tmp_path: Path) -> None:
    # a logger stopped mid-row: the last row has two cells
    t, acc = read_csv(written(tmp_path, PLAIN + "0.15,0.2"))
    assert t.shape == (4,)
    np.testing.assert_array_equal(acc[:3], read_csv(written(tmp_path, PLAIN, "p.csv"))[1])
    assert np.isnan(t[3])
    assert np.all(np.isnan(acc[3]))
    # a row with a cell too many is not trusted either: its columns may have shifted
    t, _ = read_csv(written(tmp_path, PLAIN.replace("0.05,0.3", "0.05,7,0.3")))
    assert np.isnan(t[1])
    assert np.isfinite(t[[0, 2]]).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("# only a comment\n", "no header line"),
        ("time,x,y,z\n0,0,0,1\n", "expected header t_s,ax_g,ay_g,az_g, got time,x,y,z"),
        ("t_s,ax_g,ay_g\n0,0,0\n", "missing az_g"),
        ("t_s,ax_g,ay_g,az_g\n", "no data"),
        ("t_s,ax_g,ay_g,az_g\n\n\n", "no data"),
        ("t_s,ax_g,ay_g,az_g\n0,0,0\n0.1,0,0\n0.2,0,0,1\n", r"row 2: expected 4 columns, got 3"),
    ],
)
def test_read_csv_refuses_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(FallInputError, match=message):
        read_csv(written(tmp_path, text))


def test_read_csv_missing_file_or_not_text(tmp_path: Path) -> None:
    with pytest.raises(FallInputError, match="cannot read"):
        read_csv(tmp_path / "absent.csv")
    # bytes that are neither UTF-8 nor GB18030, with no UTF-16 byte-order mark
    with pytest.raises(FallInputError, match=r"cannot read file: not text"):
        read_csv(written(tmp_path, b"t_s\xff\xff\x80,ax_g,ay_g,az_g\n0,0,0,1\n"))
