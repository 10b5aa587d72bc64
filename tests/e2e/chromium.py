"""Where the browser tests find Chromium: Debian's, never one downloaded by a tool."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("ELDERCARE_CHROMIUM", "/usr/bin/chromium"))
MISSING = (
    f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set"
    " ELDERCARE_CHROMIUM): the browser tests need a real browser"
)


def available() -> bool:
    return CHROMIUM.is_file()
