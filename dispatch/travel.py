"""Travel time and distance from coordinates, behind an interface a road router can replace.

:class:`HaversineTravel` is the default: great-circle distance times a road
factor (streets are not straight; 1.3 is typical of a Chinese city grid), at a
speed per mode. A router (OSRM, Valhalla) would implement :class:`TravelModel`
with the same vectorised methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from dispatch.model import Mode

EARTH_RADIUS_KM: Final = 6371.0088
Floats = npt.NDArray[np.float64]
Coord = Floats | np.float64  # an array of coordinates, or one

# urban door-to-door speeds in km/h, including parking and stairs at neither end
DEFAULT_SPEEDS: Final[Mapping[Mode, float]] = {
    Mode.WALK: 4.5,
    Mode.BIKE: 12.0,
    Mode.EBIKE: 18.0,
    Mode.CAR: 22.0,
}


class TravelModel(Protocol):
    def distance_km(self, lat1: Coord, lon1: Coord, lat2: Coord, lon2: Coord) -> Floats:
        """Road distance, element-wise (broadcasting like numpy)."""
        ...

    def speed_kmh(self, mode: Mode) -> float: ...

    def matrix_km(self, lat: Floats, lon: Floats) -> Floats:
        """All-pairs road distance between the given points."""
        ...


def haversine_km(lat1: Coord, lon1: Coord, lat2: Coord, lon2: Coord) -> Floats:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    out: Floats = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


@dataclass(frozen=True, slots=True)
class HaversineTravel:
    road_factor: float = 1.3
    speeds: Mapping[Mode, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS))

    def __post_init__(self) -> None:
        if self.road_factor < 1.0:
            raise ValueError("road_factor must be >= 1")
        if any(v <= 0 for v in self.speeds.values()):
            raise ValueError("speeds must be positive")

    def distance_km(self, lat1: Coord, lon1: Coord, lat2: Coord, lon2: Coord) -> Floats:
        out: Floats = haversine_km(lat1, lon1, lat2, lon2) * self.road_factor
        return out

    def speed_kmh(self, mode: Mode) -> float:
        return float(self.speeds[mode])

    def matrix_km(self, lat: Floats, lon: Floats) -> Floats:
        return self.distance_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])


def seconds(distance_km: Floats | float, speed_kmh: Floats | float) -> Floats:
    out: Floats = np.asarray(distance_km, dtype=np.float64) / np.asarray(speed_kmh) * 3600.0
    return out
