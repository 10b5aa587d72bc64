"""Reading a wrist recording from a CSV file: ``t_s,ax_g,ay_g,az_g``.

Files come from many tools: spreadsheets (a byte-order mark, CRLF, ``;`` as the
separator and a decimal comma, UTF-16 "Unicode text", or GBK from a Chinese-locale
spreadsheet), loggers (a tab, ``#`` comment lines before the
header, upper-case names, a last row cut off when the recording stopped). All
of them are read; what cannot be read is refused with the reason, row by row
where it can be, so one damaged row never costs the rest of the window.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Final

import numpy as np

from alerts.falls.signal import FallInputError, FloatArray

CSV_COLUMNS: Final = ("t_s", "ax_g", "ay_g", "az_g")
SEPARATORS: Final = (",", ";", "\t")
# UTF-32's byte-order marks begin with UTF-16's, so they are tried first
UNICODE_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _text(raw: bytes) -> str:
    """Decode a file: by its UTF-16/32 byte-order mark, else UTF-8, else GB18030.

    UTF-16 without a mark is recognised by its ASCII text: every other byte of
    the header is zero.

    GB18030 (a superset of GBK) is what a Chinese-locale spreadsheet saves a
    CSV as; its multi-byte characters never contain an ASCII byte that is a
    digit, a separator or a line end, so the numbers read the same whatever
    the comments or other columns say.
    """
    for bom, codec in UNICODE_BOMS:
        if raw.startswith(bom):
            return raw.decode(codec)
    head = raw[:64]
    if len(head) >= 8 and not any(head[1::2]):
        return raw.decode("utf-16-le")
    if len(head) >= 8 and not any(head[0::2]):
        return raw.decode("utf-16-be")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def _name(cell: str) -> str:
    return cell.strip().strip('"').strip().lower()


def _names(line: str, separator: str) -> set[str]:
    return {_name(cell) for cell in line.split(separator)}


def _header(lines: list[str]) -> tuple[int, str]:
    """Index of the header line (after blank and ``#`` lines) and its separator."""
    texts = (i for i, line in enumerate(lines) if line.strip() and not line.startswith("#"))
    at = next(texts, None)
    if at is None:
        raise FallInputError("empty file" if not "".join(lines).strip() else "no header line")
    for separator in SEPARATORS:
        if _names(lines[at], separator).issuperset(CSV_COLUMNS):
            return at, separator
    missing = [name for name in CSV_COLUMNS if name not in _names(lines[at], ",")]
    raise FallInputError(
        f"expected header {','.join(CSV_COLUMNS)}, got {lines[at].strip()}"
        f" (missing {','.join(missing)})"
    )


def _number(cell: str, decimal_comma: bool) -> float:
    cell = cell.strip().strip('"')
    try:
        return float(cell.replace(",", ".") if decimal_comma else cell)
    except ValueError:
        return float("nan")  # the row is invalid, dropped later with the others


def read_csv(path: Path) -> tuple[FloatArray, FloatArray]:
    """Read a ``t_s,ax_g,ay_g,az_g`` CSV into (t_s, acc_g); raise FallInputError.

    The four columns are found by name (any case, any order; other columns,
    such as a gyroscope's, are ignored), the separator from the header (``,``,
    ``;`` or a tab; with ``;`` or a tab a decimal comma is read as a point).
    A row with a cell that is not a number, or with a different number of
    cells than the header (a recording cut off mid-row), is invalid and
    dropped later with the other invalid rows; a file in which most rows have
    the wrong number of cells is refused, since its columns cannot be trusted.
    """
    if path.is_dir():
        raise FallInputError("directory holds no *.csv files")
    try:
        text = _text(path.read_bytes())
    except OSError as exc:
        raise FallInputError(f"cannot read file: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise FallInputError("cannot read file: not text (UTF-8, UTF-16 or GB18030)") from exc
    lines = text.splitlines(keepends=True)
    at, separator = _header(lines)
    rows = list(csv.reader(io.StringIO("".join(lines[at:]), newline=""), delimiter=separator))
    header = [_name(cell) for cell in rows[0]]
    where = [header.index(name) for name in CSV_COLUMNS]
    body = [(at + 1 + i, row) for i, row in enumerate(rows[1:], 1) if any(c.strip() for c in row)]
    if not body:
        raise FallInputError("no data rows")
    ragged = [(line, len(row)) for line, row in body if len(row) != len(header)]
    if len(ragged) * 2 > len(body):
        line, cells = ragged[0]
        raise FallInputError(f"row {line}: expected {len(header)} columns, got {cells}")
    decimal_comma = separator != ","
    values = np.full((len(body), len(CSV_COLUMNS)), np.nan)
    for i, (_, row) in enumerate(body):
        if len(row) == len(header):
            values[i] = [_number(row[k], decimal_comma) for k in where]
    return values[:, 0], values[:, 1:]
