"""Registries of residents and wristbands (shared by the CLI, the API and the simulators)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow, class_row

from eldercare.credentials import hash_secret, new_secret

CONDITIONS = frozenset(
    {
        "hypertension",
        "copd",
        "copd_hypercapnic",
        "heart_failure",
        "dementia",
        "frailty",
        "diabetes",
        "parkinsons",
        "stroke_history",
    }
)


class RegistryError(Exception):
    """A registry change that cannot be made (unknown resident, duplicate band...)."""


@dataclass(frozen=True, slots=True)
class EmergencyContact:
    name: str
    relation: str
    phone: str


@dataclass(frozen=True, slots=True)
class NewResident:
    name: str
    birth_year: int
    sex: str | None = None
    address: str = ""
    district: str = ""
    home_lat: float | None = None
    home_lon: float | None = None
    living_alone: bool = False
    conditions: tuple[str, ...] = ()
    emergency_contacts: tuple[EmergencyContact, ...] = ()
    external_ref: str | None = None

    def __post_init__(self) -> None:
        check_conditions(self.conditions)


def check_conditions(conditions: Iterable[str]) -> None:
    """RegistryError naming the conditions that are not in ``CONDITIONS``."""
    unknown = set(conditions) - CONDITIONS
    if unknown:
        raise RegistryError(f"unknown conditions {sorted(unknown)}; known: {sorted(CONDITIONS)}")


@dataclass(frozen=True, slots=True)
class Wristband:
    device_id: str
    model: str
    firmware: str
    resident_id: int | None
    expected_interval_s: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class ProvisionedWristband:
    """Returned once at provisioning: the only time the plaintext secret exists."""

    device_id: str
    mqtt_username: str
    mqtt_password: str = field(repr=False)


async def add_residents(
    conn: psycopg.AsyncConnection[TupleRow], residents: Sequence[NewResident]
) -> list[int]:
    """Insert residents; returns their ids in order. Does not commit."""
    ids: list[int] = []
    async with conn.cursor() as cur:
        for r in residents:
            await cur.execute(
                "INSERT INTO residents (external_ref, name, birth_year, sex, address, district,"
                " home_lat, home_lon, living_alone, conditions, emergency_contacts)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING resident_id",
                (
                    r.external_ref,
                    r.name,
                    r.birth_year,
                    r.sex,
                    r.address,
                    r.district,
                    r.home_lat,
                    r.home_lon,
                    r.living_alone,
                    list(r.conditions),
                    json.dumps([_contact(c) for c in r.emergency_contacts]),
                ),
            )
            row = await cur.fetchone()
            if row is None:
                raise RuntimeError("INSERT ... RETURNING id gave no row for a resident")
            ids.append(int(row[0]))
    return ids


def _contact(c: EmergencyContact) -> dict[str, str]:
    return {"name": c.name, "relation": c.relation, "phone": c.phone}


async def provision_wristbands(
    conn: psycopg.AsyncConnection[TupleRow],
    bands: Sequence[tuple[str, int | None]],
    *,
    model: str = "",
    firmware: str = "",
    expected_interval_s: int = 60,
) -> list[ProvisionedWristband]:
    """Register bands (device id, paired resident) with fresh MQTT credentials. No commit."""
    out: list[ProvisionedWristband] = []
    async with conn.cursor() as cur:
        for device_id, resident_id in bands:
            secret = new_secret()
            try:
                await cur.execute(
                    "INSERT INTO wristbands (device_id, model, firmware, resident_id, secret_hash,"
                    " expected_interval_s) VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        device_id,
                        model,
                        firmware,
                        resident_id,
                        hash_secret(secret),
                        expected_interval_s,
                    ),
                )
            except psycopg.errors.UniqueViolation as exc:
                raise RegistryError(
                    f"wristband {device_id} or its resident is already paired"
                ) from exc
            except psycopg.errors.CheckViolation as exc:
                raise RegistryError(f"invalid device id {device_id!r}") from exc
            except psycopg.errors.ForeignKeyViolation as exc:
                raise RegistryError(f"no resident {resident_id}") from exc
            out.append(ProvisionedWristband(device_id, device_id, secret))
    return out


async def pair_wristband(
    conn: psycopg.AsyncConnection[TupleRow], device_id: str, resident_id: int
) -> int | None:
    """Pair a band with a resident: a band kept unpaired (a centre's stock) when it is
    handed out, or a band moved to another resident; returns the resident it was paired
    with before (None: unpaired). RegistryError for a band that is unknown or revoked, a
    resident who is unknown or already wears another band. No commit. Ingest takes the
    pairing at its next directory refresh; the alert engine then clears what the band
    held open for its previous wearer (``band_unpaired``). Before 2026-12-04 a band
    provisioned unpaired could never be paired: its SOS raised nothing, for anyone."""
    cur = await conn.execute(
        "SELECT resident_id, revoked_at IS NOT NULL FROM wristbands WHERE device_id = %s"
        " FOR UPDATE",
        (device_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise RegistryError(f"no wristband {device_id}")
    if row[1]:
        raise RegistryError(f"wristband {device_id} is revoked; provision a new one")
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE wristbands SET resident_id = %s WHERE device_id = %s",
                (resident_id, device_id),
            )
    except psycopg.errors.UniqueViolation as exc:
        raise RegistryError(f"resident {resident_id} already wears another band") from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise RegistryError(f"no resident {resident_id}") from exc
    return None if row[0] is None else int(row[0])


RESIDENT_FIELDS: Final = frozenset({
    "name", "birth_year", "sex", "address", "district", "home_lat", "home_lon",
    "living_alone", "conditions", "emergency_contacts", "external_ref",
})  # fmt: skip


async def update_resident(
    conn: psycopg.AsyncConnection[TupleRow], resident_id: int, changes: Mapping[str, object]
) -> None:
    """Change the given fields of a resident's record (``RESIDENT_FIELDS``; conditions a
    sequence of names, contacts of :class:`EmergencyContact`); the caller has found the
    resident. RegistryError for an unknown field or condition. No commit. The alert
    engine takes the change at its next profile refresh (30 s): a new diagnosis of
    COPD or dementia, living alone, a moved home."""
    unknown = set(changes) - RESIDENT_FIELDS
    if unknown:
        raise RegistryError(f"unknown resident fields {sorted(unknown)}")
    values: dict[str, object] = dict(changes)
    if "conditions" in values:
        conditions = values["conditions"]
        if not isinstance(conditions, list | tuple):
            raise RegistryError("conditions: a list of condition names")
        check_conditions(conditions)
        values["conditions"] = list(conditions)
    if "emergency_contacts" in values:
        contacts = values["emergency_contacts"]
        if not isinstance(contacts, list | tuple) or not all(
            isinstance(c, EmergencyContact) for c in contacts
        ):
            raise RegistryError("emergency_contacts: a list of EmergencyContact")
        values["emergency_contacts"] = json.dumps([_contact(c) for c in contacts])
    if not values:
        return
    names = sorted(values)
    sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
    await conn.execute(
        sql.SQL("UPDATE residents SET {}, updated_at = now() WHERE resident_id = %s").format(sets),
        [*(values[n] for n in names), resident_id],
    )


async def revoke_wristband(conn: psycopg.AsyncConnection[TupleRow], device_id: str) -> bool:
    cur = await conn.execute(
        "UPDATE wristbands SET revoked_at = now(), secret_hash = NULL"
        " WHERE device_id = %s AND revoked_at IS NULL",
        (device_id,),
    )
    return cur.rowcount == 1


async def list_wristbands(conn: psycopg.AsyncConnection[TupleRow]) -> list[Wristband]:
    async with conn.cursor(row_factory=class_row(Wristband)) as cur:
        await cur.execute(
            "SELECT device_id, model, firmware, resident_id, expected_interval_s,"
            " revoked_at IS NOT NULL AS revoked FROM wristbands ORDER BY device_id"
        )
        return await cur.fetchall()


async def mosquitto_password_lines(conn: psycopg.AsyncConnection[TupleRow]) -> list[str]:
    """``username:hash`` lines for every active band, for Mosquitto's password_file."""
    cur = await conn.execute(
        "SELECT device_id, secret_hash FROM wristbands"
        " WHERE revoked_at IS NULL AND secret_hash IS NOT NULL ORDER BY device_id"
    )
    return [f"{device_id}:{secret_hash}" for device_id, secret_hash in await cur.fetchall()]
