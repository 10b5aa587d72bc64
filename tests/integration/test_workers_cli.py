"""`eldercare workers add FILE` through the real command: workers and their shifts
registered, loadable again, and a clear error (no traceback, nothing written) for a
file that is not a roster. Before 2026-12-04 only SQL could register real workers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from dispatch.day import plan_and_offer
from dispatch.model import load_catalogue
from dispatch.roster import sync_catalogue
from dispatch.roster_file import roster
from tests.integration.test_register_cli import eldercare
from tests.support import rows

SHIFT = {"starts_at": "2026-12-07T08:00:00+08:00", "ends_at": "2026-12-07T12:00:00+08:00"}
WORKER = {
    "worker_id": "W001",
    "name": "李梅",
    "district": "如城街道",
    "skills": ["caregiver", "bathing"],
    "home_lat": 32.39,
    "home_lon": 120.56,
    "mode": "ebike",
    "shifts": [SHIFT, {"starts_at": "2026-12-07T14:00:00+08:00",
                       "ends_at": "2026-12-07T18:00:00+08:00"}],
}  # fmt: skip


def write(tmp_path: Path, doc: object) -> str:
    file = tmp_path / "workers.json"
    file.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(file)


def test_a_roster_registers_workers_and_shifts_and_loads_again(db_url: str, tmp_path: Path) -> None:
    file = write(tmp_path, {"workers": [WORKER]})
    done = eldercare(db_url, "workers", "add", file)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "workers": 1, "shifts_added": 2, "shifts_kept": 0,
    }  # fmt: skip
    again = eldercare(db_url, "workers", "add", file)  # the same file: nothing new
    assert json.loads(again.stdout.splitlines()[-1])["shifts_kept"] == 2


async def test_registered_workers_are_planned_in_their_shifts(db_url: str, tmp_path: Path) -> None:
    done = eldercare(db_url, "workers", "add", write(tmp_path, {"workers": [WORKER]}))
    assert done.returncode == 0, done.stderr
    got = await rows(db_url, "SELECT name, skills, status FROM service_workers")
    assert got == [("李梅", ["bathing", "caregiver"], "off_shift")]
    shifts = await rows(db_url, "SELECT starts_at, ends_at FROM worker_shifts ORDER BY 1")
    assert shifts[0] == (datetime(2026, 12, 7, 0, tzinfo=UTC), datetime(2026, 12, 7, 4, tzinfo=UTC))
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await sync_catalogue(conn, load_catalogue())
        report = await plan_and_offer(
            conn, date(2026, 12, 7), tz=ZoneInfo("Asia/Shanghai"),
            now=datetime(2026, 12, 6, 20, tzinfo=UTC), seconds=0.5,
        )  # fmt: skip
    assert report.workers == 1  # the day planner sees the worker through their shifts


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"skills": ["cooking"]}, "unknown skill cooking"),
        ({"worker_id": "W 1"}, "workers.0.worker_id"),
        ({"shifts": [{"starts_at": "2026-12-07T08:00:00", "ends_at": "2026-12-07T12:00:00"}]},
         "timezone"),
        ({"shifts": [SHIFT, {"starts_at": "2026-12-07T11:00:00+08:00",
                             "ends_at": "2026-12-07T13:00:00+08:00"}]}, "overlap"),
        ({"shifts": [{"starts_at": SHIFT["ends_at"], "ends_at": SHIFT["starts_at"]}]},
         "ends before it starts"),
        ({"nmae": "x"}, "workers.0.nmae"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_roster_is_refused_with_its_reason(
    db_url: str, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    done = eldercare(db_url, "workers", "add", write(tmp_path, {"workers": [{**WORKER, **change}]}))
    assert done.returncode == 2
    assert message in done.stderr
    assert "nothing was written" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_shift_overlapping_one_on_record_writes_nothing(
    db_url: str, tmp_path: Path
) -> None:
    first = eldercare(db_url, "workers", "add", write(tmp_path, {"workers": [WORKER]}))
    assert first.returncode == 0, first.stderr
    late = {"starts_at": "2026-12-07T10:00:00+08:00", "ends_at": "2026-12-07T13:00:00+08:00"}
    moved = {**WORKER, "name": "李梅梅", "shifts": [late]}
    done = eldercare(db_url, "workers", "add", write(tmp_path, {"workers": [moved]}))
    assert done.returncode == 2
    assert "overlaps one on record" in done.stderr
    assert await rows(db_url, "SELECT name FROM service_workers") == [("李梅",)]
    assert len(await rows(db_url, "SELECT 1 FROM worker_shifts")) == 2


def test_the_same_worker_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="in the file twice"):
        roster({"workers": [WORKER, WORKER]})
