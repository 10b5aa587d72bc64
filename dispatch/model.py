"""Dispatch domain values: skills, service types, workers, work orders and their states.

Pure values (frozen, slotted, validated at construction); the database rows are
converted into these at the edge (:mod:`dispatch.store`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

SKILLS: Final = frozenset(
    {"nurse", "caregiver", "bathing", "cleaning", "meal_delivery", "escort", "driver"}
)


class WorkerStatus(StrEnum):
    AVAILABLE = "available"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    OFF_SHIFT = "off_shift"


class Mode(StrEnum):
    WALK = "walk"
    BIKE = "bike"
    EBIKE = "ebike"
    CAR = "car"


class OrderKind(StrEnum):
    EMERGENCY = "emergency"
    BOOKED = "booked"
    RECURRING = "recurring"


class OrderState(StrEnum):
    CREATED = "created"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def live(self) -> bool:
        """The order holds its worker (the no-double-booking constraint covers it)."""
        return self in LIVE

    @property
    def final(self) -> bool:
        return self in FINAL


LIVE: Final = frozenset(
    {OrderState.OFFERED, OrderState.ACCEPTED, OrderState.EN_ROUTE, OrderState.ON_SITE}
)
FINAL: Final = frozenset({OrderState.COMPLETED, OrderState.CANCELLED, OrderState.FAILED})
# the worker has set off or arrived: the visit is under way
UNDER_WAY: Final = frozenset({OrderState.EN_ROUTE, OrderState.ON_SITE})
# created, offered or accepted: nobody has set off yet (cancelling it troubles no one)
NOT_BEGUN: Final = frozenset({OrderState.CREATED, OrderState.OFFERED, OrderState.ACCEPTED})


def meets_absence(
    window_start: datetime,
    window_end: datetime,
    away_from: datetime | None,
    away_until: datetime | None,
) -> bool:
    """Does a visit's window meet the resident's absence from home (eldercare.absence)?
    Any overlap counts: nobody is home to let the worker in."""
    if away_from is None or away_until is None:
        return False
    return window_start < away_until and window_end > away_from


class CatalogueError(ValueError):
    """A service catalogue that cannot be used."""


@dataclass(frozen=True, slots=True)
class ServiceType:
    code: str
    name: str
    duration_min: int
    skills: frozenset[str]
    interruptible: bool = False
    emergency: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.duration_min <= 720:
            raise CatalogueError(f"{self.code}: duration_min must be 1..720")
        unknown = self.skills - SKILLS
        if unknown:
            raise CatalogueError(f"{self.code}: unknown skills {sorted(unknown)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "duration_min": self.duration_min,
            "skills": sorted(self.skills),
            "interruptible": self.interruptible,
            "emergency": self.emergency,
        }


@dataclass(frozen=True, slots=True)
class Catalogue:
    services: Mapping[str, ServiceType]

    def __getitem__(self, code: str) -> ServiceType:
        try:
            return self.services[code]
        except KeyError:
            raise CatalogueError(f"unknown service type {code!r}") from None

    def emergency_type(self) -> ServiceType:
        for s in self.services.values():
            if s.emergency:
                return s
        raise CatalogueError("the catalogue has no emergency service")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalogue:
        entries = data.get("services")
        if not isinstance(entries, list) or not entries:
            raise CatalogueError("a catalogue needs a non-empty 'services' list")
        out: dict[str, ServiceType] = {}
        for e in entries:
            if not isinstance(e, dict) or "code" not in e:
                raise CatalogueError(f"bad catalogue entry {e!r}")
            try:
                s = ServiceType(
                    code=str(e["code"]),
                    name=str(e.get("name", e["code"])),
                    duration_min=int(e["duration_min"]),
                    skills=frozenset(str(k) for k in e.get("skills", [])),
                    interruptible=bool(e.get("interruptible", False)),
                    emergency=bool(e.get("emergency", False)),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise CatalogueError(f"bad catalogue entry {e!r}: {exc}") from exc
            out[s.code] = s
        return cls(out)


def read_catalogue_yaml(path: str | Path | None = None) -> dict[str, Any]:
    """The packaged catalogue file's mapping, or that of the YAML file at ``path``."""
    if path is None:
        text = (resources.files("dispatch") / "catalogue.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise CatalogueError("the catalogue must be a YAML mapping")
    return data


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """The packaged catalogue, or the YAML file at ``path``."""
    return Catalogue.from_dict(read_catalogue_yaml(path))


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError("latitude/longitude out of range")


@dataclass(frozen=True, slots=True)
class Shift:
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        if self.ends_at <= self.starts_at:
            raise ValueError("a shift must end after it starts")

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class Worker:
    worker_id: str
    district: str
    skills: frozenset[str]
    home: Point
    mode: Mode = Mode.EBIKE
    max_orders_per_day: int = 10
    status: WorkerStatus = WorkerStatus.OFF_SHIFT
    location: Point | None = None
    shifts: tuple[Shift, ...] = ()

    def where(self) -> Point:
        return self.location or self.home

    def on_shift(self, at: datetime) -> bool:
        return any(s.covers(at) for s in self.shifts)


@dataclass(frozen=True, slots=True)
class Order:
    """A work order as the planners see it (no lifecycle detail)."""

    order_id: int
    resident_id: int
    service_type: str
    where: Point
    window_start: datetime
    window_end: datetime
    duration: timedelta
    skills: frozenset[str] = field(default_factory=frozenset)
    priority: int = 3
    preferred_worker: str | None = None  # continuity of care: who served this resident before
    district: str = ""
    # who rejected it or let its offer time out: a plan does not give it to them again
    declined_by: frozenset[str] = field(default_factory=frozenset)
    # a visit this worker already holds (offered, accepted, under way): a re-plan keeps
    # it at its booked time (window_start) for them and plans the rest around it
    held_by: str | None = None

    def __post_init__(self) -> None:
        if self.window_end < self.window_start:
            raise ValueError("an order's window must not end before it starts")


def qualified(worker_skills: frozenset[str], required: Sequence[str] | frozenset[str]) -> bool:
    return all(s in worker_skills for s in required)


def may_plan(worker_id: str, worker_skills: frozenset[str], order: Order) -> bool:
    """Whether a plan may give ``order`` to this worker: qualified, and not one who
    declined it (before 2026-12-04 a planned visit a worker let time out was planned
    for that worker again); a visit a worker holds, to that worker only."""
    if order.held_by is not None:
        return worker_id == order.held_by
    return qualified(worker_skills, order.skills) and worker_id not in order.declined_by
