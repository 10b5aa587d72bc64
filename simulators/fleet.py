"""A fleet: residents, their bands, the scenario plan, and the merged message stream.

    fleet = Fleet.create(seed=7, bands=100, prefix="SIM", start=start)
    await fleet.register(db_url)                 # through eldercare.registry
    sim = fleet.simulate(duration_s=3600, scenario=Scenario.load("emergencies.yaml"))
    for out in sim.outputs(): ...                # Publish / Link values, in time order
    for msg in sim.messages(): msg.topic, msg.payload

No broker, no clock: the stream is a pure function of seed, size, start and
scenario. ``simulators.runner`` paces it against the wall clock and publishes.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from eldercare.registry_cli import register
from simulators.device import Band
from simulators.profiles import Profile, make_profile
from simulators.scenario import Episode, Scenario, plan, write_truth
from simulators.uplink import Link, Output, Publish

DEFAULT_PREFIX = "SIM"
_REGISTER_CHUNK = 2_000


def device_id(prefix: str, index: int) -> str:
    return f"{prefix}-{index:06d}"


def _start_ms(start: datetime | int | None) -> int:
    if start is None:
        start = datetime.now(UTC)
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        return round(start.timestamp() * 1000)
    return int(start)


@dataclass(slots=True)
class Fleet:
    seed: int
    prefix: str
    profiles: tuple[Profile, ...]
    resident_ids: dict[str, int] = field(default_factory=dict)  # device id -> registry id
    credentials: dict[str, str] = field(default_factory=dict)  # device id -> MQTT password

    @classmethod
    def create(
        cls,
        *,
        seed: int = 0,
        bands: int = 10,
        prefix: str = DEFAULT_PREFIX,
        interval_s: int | None = None,
        year: int | None = None,
    ) -> Fleet:
        """Draw ``bands`` residents; ``interval_s`` fixes every band's interval (else 10-60 s)."""
        if bands < 0:
            raise ValueError("bands must be >= 0")
        year = year if year is not None else datetime.now(UTC).year
        profiles = tuple(
            make_profile(random.Random(f"profile:{seed}:{i}"), index=i,
                         device_id=device_id(prefix, i), start_year=year, interval_s=interval_s)
            for i in range(bands)
        )  # fmt: skip
        return cls(seed=seed, prefix=prefix, profiles=profiles)

    def __len__(self) -> int:
        return len(self.profiles)

    async def register(self, database_url: str) -> dict[str, int]:
        """Register residents and wristbands through the platform's registry.

        Returns device id -> resident id, and keeps each band's MQTT password (shown once).
        """
        for i in range(0, len(self.profiles), _REGISTER_CHUNK):
            chunk = self.profiles[i : i + _REGISTER_CHUNK]
            creds = await register(database_url,
                                   {"residents": [p.registry_entry() for p in chunk]})  # fmt: skip
            for c in creds:
                self.resident_ids[c["device_id"]] = int(c["resident_id"])
                self.credentials[c["device_id"]] = c["mqtt_password"]
        return dict(self.resident_ids)

    def simulate(
        self,
        *,
        duration_s: float,
        start: datetime | int | None = None,
        scenario: Scenario | None = None,
    ) -> Simulation:
        scenario = scenario or Scenario(name="none")
        start_ms = _start_ms(start)
        duration_ms = round(duration_s * 1000)
        episodes = plan(scenario, self.profiles, start_ms=start_ms, duration_ms=duration_ms,
                        seed=self.seed)  # fmt: skip
        return Simulation(self, scenario, start_ms, start_ms + duration_ms, episodes)


@dataclass(slots=True)
class Simulation:
    fleet: Fleet
    scenario: Scenario
    start_ms: int
    end_ms: int
    episodes: list[Episode]

    def bands(self) -> list[Band]:
        by_band: dict[int, list[Episode]] = {}
        for e in self.episodes:
            by_band.setdefault(e.index, []).append(e)
        return [
            Band(p, seed=self.fleet.seed, episodes=by_band.get(p.index, []),
                 background=self.scenario.background)
            for p in self.fleet.profiles
        ]  # fmt: skip

    def outputs(self) -> Iterator[Output]:
        """Every band's outputs merged in time order (ties: fleet index, then band order)."""
        streams = [b.outputs(self.start_ms, self.end_ms) for b in self.bands()]
        return heapq.merge(*streams, key=_time)

    def messages(self) -> Iterator[Publish]:
        """Only what is published: ``msg.topic``, ``msg.payload``, ``msg.t_ms``."""
        return (o for o in self.outputs() if isinstance(o, Publish))

    def truth(self, *, until_ms: int | None = None) -> list[Episode]:
        """Injected episodes that started before ``until_ms`` (default: the end)."""
        limit = self.end_ms if until_ms is None else until_ms
        return [e for e in self.episodes if e.start_ms < limit]

    def write_truth(self, path: str | Path, *, until_ms: int | None = None) -> int:
        return write_truth(path, self.truth(until_ms=until_ms), self.fleet.resident_ids)

    def links(self) -> Sequence[Link]:
        return [o for o in self.outputs() if isinstance(o, Link)]

    def resident_ids(self) -> Mapping[str, int]:
        return self.fleet.resident_ids


def _time(o: Output) -> int:
    return o.t_ms
