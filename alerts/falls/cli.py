"""``eldercare falls score PATH...``: score wrist CSV windows, one JSON line each.

Needs numpy only: no database, no broker, no scikit-learn.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from alerts.falls.model import FallModelError, detect_fall, load_model
from alerts.falls.recording import read_csv
from alerts.falls.signal import FallInputError


def _csv_under(folder: Path) -> list[Path]:
    """Every ``.csv`` file (any case: ``.CSV`` from a Windows tool) under ``folder``, its
    subfolders included (a dataset kept per subject or per activity), sorted by path.
    Links to folders are not followed: a link back up would never end."""
    found = [
        Path(root) / name
        for root, _dirs, files in os.walk(folder)
        for name in files
        if name.lower().endswith(".csv")
    ]
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def _expand(paths: list[str]) -> Iterator[tuple[str, Path]]:
    """Files as given; a directory stands for the CSV files under it."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = _csv_under(path)
            if not found:
                yield given, path  # scored as an error: nothing to read
            for file in found:
                yield str(file), file
        else:
            yield given, path


def score_main(
    paths: list[str], *, model_path: str | None = None, out: TextIO | None = None
) -> int:
    """Print one JSON line per file; 0 if every file scored, 1 if any failed."""
    stream = sys.stdout if out is None else out
    try:
        model = load_model(None if model_path is None else Path(model_path))
    except FallModelError as exc:
        stream.write(json.dumps({"file": model_path, "error": str(exc)}) + "\n")
        return 1
    failed = False
    for shown, path in _expand(paths):
        line: dict[str, Any] = {"file": shown}
        try:
            t_s, acc_g = read_csv(path)
            decision = detect_fall(t_s, acc_g, model)
        except FallInputError as exc:
            failed = True
            line["error"] = str(exc)
        except Exception as exc:  # a defect met on one file must not cost the others
            failed = True
            line["error"] = f"internal error, please report: {type(exc).__name__}: {exc}"
        else:
            line.update(fall=decision.fall, t_s=decision.t_s, score=round(decision.score, 6))
        stream.write(json.dumps(line) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(score_main(sys.argv[1:]))
