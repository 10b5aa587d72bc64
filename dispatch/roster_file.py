"""`eldercare workers add FILE`: the centre's service workers and their shifts, from JSON.

Until 2026-12-04 the only way to put real workers and shifts into the platform was
SQL (the virtual workers of the demo and the benchmarks registered themselves):
emergency dispatch had nobody to send, and the day planner plans only workers with a
shift that day. The file::

    {"workers": [{"worker_id": "W001", "name": "...", "district": "如城街道",
                  "skills": ["caregiver", "bathing"], "home_lat": 32.39, "home_lon": 120.56,
                  "mode": "ebike", "max_orders_per_day": 10,
                  "shifts": [{"starts_at": "2026-12-07T08:00:00+08:00",
                              "ends_at": "2026-12-07T12:00:00+08:00"}]}]}

A worker already on record is updated (name, district, skills, home, mode, capacity)
and is active again if they had been retired (``POST /workers/{id}/retire``);
a shift already on record as it is (same start and end) is left as it is, so the same
file may be loaded again. Everything is checked first and written in one transaction:
an unknown skill, a time without its UTC offset, a shift that overlaps another of the
worker's (in the file or on record) is an error naming the worker, and then nothing
is written.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime

import psycopg
from pydantic import AwareDatetime, Field, field_validator

from dispatch.model import SKILLS, Mode, Point
from dispatch.roster import Conn, NewWorker, add_shift, add_workers
from eldercare.json_files import Strict, read_json, validated
from eldercare.settings import Settings

WORKER_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # as service_workers checks it


class ShiftIn(Strict):
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class WorkerFields(Strict):
    """A worker as the file and ``PUT /workers/{worker_id}`` give it, but its id."""

    name: str = Field(min_length=1, max_length=200)
    district: str = Field(default="", max_length=100)
    skills: list[str] = Field(min_length=1)
    certificates: list[str] = Field(default_factory=list)
    home_lat: float = Field(ge=-90, le=90)
    home_lon: float = Field(ge=-180, le=180)
    mode: Mode = Mode.EBIKE
    max_orders_per_day: int = Field(default=10, ge=0, le=100)
    shifts: list[ShiftIn] = Field(default_factory=list)

    @field_validator("skills")
    @classmethod
    def _known_skills(cls, skills: list[str]) -> list[str]:
        unknown = sorted(set(skills) - SKILLS)
        if unknown:
            known = ", ".join(sorted(SKILLS))
            raise ValueError(f"unknown skill {', '.join(unknown)} (known: {known})")
        return skills


class WorkerIn(WorkerFields):
    worker_id: str = Field(pattern=WORKER_ID)

    def new_worker(self) -> NewWorker:
        return NewWorker(self.worker_id, self.name, self.district, frozenset(self.skills),
                         Point(self.home_lat, self.home_lon), mode=self.mode,
                         certificates=tuple(self.certificates),
                         max_orders_per_day=self.max_orders_per_day)  # fmt: skip


class RosterFile(Strict):
    workers: list[WorkerIn] = Field(min_length=1)


def roster(data: object) -> RosterFile:
    """Validate a roster document; ValueError names every field that is wrong, a worker
    given twice, and a shift that ends before it starts or overlaps another of its
    worker's."""
    doc = validated(RosterFile, data)
    seen: set[str] = set()
    for i, w in enumerate(doc.workers):
        if w.worker_id in seen:
            raise ValueError(f"workers.{i}: worker {w.worker_id} is in the file twice")
        seen.add(w.worker_id)
        _check_shifts(w)
    return doc


def _check_shifts(w: WorkerIn) -> None:
    """ValueError for a shift that ends before it starts or overlaps another of ``w``'s."""
    spans = sorted((s.starts_at, s.ends_at) for s in w.shifts)
    for a, b in spans:
        if b <= a:
            raise ValueError(f"worker {w.worker_id}: a shift ends before it starts ({_iso(a)})")
    for (a1, b1), (a2, b2) in itertools.pairwise(spans):
        if a2 < b1:
            raise ValueError(f"worker {w.worker_id}: shifts {_span(a1, b1)} and {_span(a2, b2)}"
                             " overlap")  # fmt: skip


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="minutes")


def _span(a: datetime, b: datetime) -> str:
    return f"{_iso(a)}-{_iso(b)}"


async def _write_shift(conn: Conn, worker_id: str, s: ShiftIn) -> bool:
    """Add the shift (True), or find it on record as it is (False); ValueError if it
    overlaps a different one on record."""
    cur = await conn.execute(
        "SELECT starts_at = %s AND ends_at = %s FROM worker_shifts WHERE worker_id = %s"
        " AND tstzrange(starts_at, ends_at) && tstzrange(%s, %s)",
        (s.starts_at, s.ends_at, worker_id, s.starts_at, s.ends_at),
    )
    same = [bool(r[0]) for r in await cur.fetchall()]
    if same == [True]:
        return False
    if same:
        raise ValueError(f"worker {worker_id}: shift {_span(s.starts_at, s.ends_at)} overlaps"
                         " one on record")  # fmt: skip
    return await add_shift(conn, worker_id, s.starts_at, s.ends_at)


async def write_roster(conn: Conn, doc: RosterFile) -> dict[str, int]:
    """Write the roster in one transaction (a savepoint in the caller's): ``{"workers",
    "shifts_added", "shifts_kept"}``. ValueError (nothing written) for a shift that
    overlaps a different one on record."""
    added = kept = 0
    async with conn.transaction():
        await add_workers(conn, [w.new_worker() for w in doc.workers])
        for w in doc.workers:
            for s in w.shifts:
                if await _write_shift(conn, w.worker_id, s):
                    added += 1
                else:
                    kept += 1
    return {"workers": len(doc.workers), "shifts_added": added, "shifts_kept": kept}


async def load_roster(url: str, doc: RosterFile) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await write_roster(conn, doc)


def add_workers_file(settings: Settings, file: str) -> int:
    data = read_json(file)
    try:
        doc = roster(data)
        done = asyncio.run(load_roster(settings.require_database_url(), doc))
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}; nothing was written") from None
    print(json.dumps(done))
    return 0
