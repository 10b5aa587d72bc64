"""Registry commands: register residents and bands from a file, list, revoke, export."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg

from eldercare.registry import (
    EmergencyContact,
    NewResident,
    add_residents,
    list_wristbands,
    mosquitto_password_lines,
    provision_wristbands,
    revoke_wristband,
)
from eldercare.settings import Settings


def resident_from_json(item: dict[str, Any]) -> NewResident:
    return NewResident(
        name=item["name"],
        birth_year=int(item["birth_year"]),
        sex=item.get("sex"),
        address=item.get("address", ""),
        district=item.get("district", ""),
        home_lat=item.get("home_lat"),
        home_lon=item.get("home_lon"),
        living_alone=bool(item.get("living_alone", False)),
        conditions=tuple(item.get("conditions", ())),
        emergency_contacts=tuple(EmergencyContact(**c) for c in item.get("emergency_contacts", ())),
        external_ref=item.get("external_ref"),
    )


async def register(url: str, data: dict[str, Any]) -> list[dict[str, str]]:
    """Register ``{"residents": [{..., "wristband": {"device_id": ...}}]}`` in one transaction;
    returns each band's MQTT credentials (shown once)."""
    residents = data.get("residents", [])
    async with await psycopg.AsyncConnection.connect(url) as conn:
        ids = await add_residents(conn, [resident_from_json(r) for r in residents])
        creds = []
        for rid, item in zip(ids, residents, strict=True):
            band = item.get("wristband")
            if not band:
                continue
            (p,) = await provision_wristbands(
                conn, [(band["device_id"], rid)], model=band.get("model", ""),
                firmware=band.get("firmware", ""),
                expected_interval_s=int(band.get("interval_s", 60)),
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
    data = json.loads(Path(file).read_text(encoding="utf-8"))
    creds = asyncio.run(register(settings.require_database_url(), data))
    print(json.dumps({"registered": len(data.get("residents", [])), "credentials": creds}))
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
