"""Registry commands: register residents and bands from a file, list, revoke, export."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import psycopg
from pydantic import Field

from eldercare.json_files import Strict, read_json, validated
from eldercare.registry import (
    EmergencyContact,
    NewResident,
    RegistryError,
    add_residents,
    list_wristbands,
    mosquitto_password_lines,
    pair_wristband,
    provision_wristbands,
    revoke_wristband,
)
from eldercare.settings import Settings


class ContactIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    relation: str = Field(max_length=100)
    phone: str = Field(min_length=1, max_length=50)


class WristbandIn(Strict):
    device_id: str = Field(min_length=1, max_length=100)
    model: str = Field(default="", max_length=100)
    firmware: str = Field(default="", max_length=100)
    interval_s: int = Field(default=60, ge=1, le=86_400)


class ResidentIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    birth_year: int = Field(ge=1900, le=2100)
    sex: Literal["female", "male"] | None = None
    address: str = Field(default="", max_length=500)
    district: str = Field(default="", max_length=100)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    living_alone: bool = False
    conditions: list[str] = Field(default_factory=list)
    emergency_contacts: list[ContactIn] = Field(default_factory=list, max_length=10)
    external_ref: str | None = Field(default=None, max_length=100)
    wristband: WristbandIn | None = None


class RegistrationFile(Strict):
    """``{"residents": [{..., "wristband": {"device_id": ...}}]}``, as `register` reads it."""

    residents: list[ResidentIn]


def registration(data: object) -> RegistrationFile:
    """Validate a registration document; ValueError names every field that is wrong."""
    return validated(RegistrationFile, data)


def resident_from_json(item: ResidentIn) -> NewResident:
    fields = item.model_dump(exclude={"wristband", "emergency_contacts", "conditions"})
    contacts = (EmergencyContact(c.name, c.relation, c.phone) for c in item.emergency_contacts)
    try:
        return NewResident(
            **fields, conditions=tuple(item.conditions), emergency_contacts=tuple(contacts)
        )
    except RegistryError as exc:
        raise ValueError(str(exc)) from None


async def register(url: str, data: object) -> list[dict[str, str]]:
    """Register ``{"residents": [{..., "wristband": {"device_id": ...}}]}`` (or a
    :class:`RegistrationFile` already checked) in one transaction; returns each band's
    MQTT credentials (shown once). Raises ValueError, naming the field, for a document
    that is not one; nothing is registered then."""
    document = data if isinstance(data, RegistrationFile) else registration(data)
    residents = document.residents
    new = [resident_from_json(r) for r in residents]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        ids = await add_residents(conn, new)
        creds = []
        for rid, item in zip(ids, residents, strict=True):
            band = item.wristband
            if band is None:
                continue
            (p,) = await provision_wristbands(
                conn, [(band.device_id, rid)], model=band.model,
                firmware=band.firmware,
                expected_interval_s=band.interval_s,
            )  # fmt: skip
            creds.append(
                {
                    "device_id": p.device_id,
                    "resident_id": str(rid),
                    "mqtt_username": p.mqtt_username,
                    "mqtt_password": p.mqtt_password,
                }
            )
        await conn.commit()
    return creds


def register_file(settings: Settings, file: str) -> int:
    data = read_json(file)
    try:
        document = registration(data)
    except ValueError as exc:
        raise ValueError(f"{file}: {exc}") from None
    try:
        creds = asyncio.run(register(settings.require_database_url(), document))
    except RegistryError as exc:
        raise ValueError(f"{file}: {exc}; nothing was registered") from None
    except psycopg.errors.UniqueViolation as exc:
        detail = (exc.diag.message_detail or str(exc).splitlines()[0]).rstrip(".")
        raise ValueError(f"{file}: already registered: {detail}; nothing was registered") from None
    print(json.dumps({"registered": len(document.residents), "credentials": creds}))
    return 0


def list_bands(settings: Settings) -> int:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as c:
            for band in await list_wristbands(c):
                print(json.dumps({
                    "device_id": band.device_id, "model": band.model, "firmware": band.firmware,
                    "resident_id": band.resident_id, "revoked": band.revoked,
                    "expected_interval_s": band.expected_interval_s}))  # fmt: skip

    asyncio.run(go())
    return 0


def pair(settings: Settings, device_id: str, resident_id: int) -> int:
    async def go() -> int | None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as c:
            before = await pair_wristband(c, device_id, resident_id)
            await c.commit()
            return before

    try:
        before = asyncio.run(go())
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    print(json.dumps({"device_id": device_id, "resident_id": resident_id,
                      "previous_resident_id": before}))  # fmt: skip
    return 0


def revoke(settings: Settings, device_id: str) -> int:
    async def go() -> bool:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as c:
            done = await revoke_wristband(c, device_id)
            await c.commit()
            return done

    if asyncio.run(go()):
        print(f"revoked {device_id}")
        return 0
    print(f"no active wristband {device_id}")
    return 1


def password_file(settings: Settings) -> int:
    async def go() -> list[str]:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as c:
            return await mosquitto_password_lines(c)

    for line in asyncio.run(go()):
        print(line)
    return 0
