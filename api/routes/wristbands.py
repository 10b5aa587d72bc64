"""Wristbands: provision (the MQTT credentials are returned once), pair, rotate, revoke.

A band is in scope when its resident is; an unpaired band only for admins.
Revoking removes the band's hash, so the password file exported for the broker
(``eldercare wristband passwd-file``) no longer lets it connect.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from psycopg.rows import dict_row

from api.deps import Ctx, Db, Tx, require, utcnow
from api.principal import Perm, Principal, Role
from api.problems import Problem, not_found
from api.schemas import WristbandCreate, WristbandCredentials, WristbandOut, WristbandPair
from api.scoping import ensure_resident, json_response
from eldercare.credentials import hash_secret, new_secret
from eldercare.registry import (
    RegistryError,
    pair_wristband,
    provision_wristbands,
    revoke_wristband,
)

router = APIRouter(tags=["wristbands"])
Manager = Annotated[Principal, Depends(require(Perm.MANAGE_WRISTBANDS))]


def _scope(me: Principal) -> tuple[str, list[object]]:
    if me.role is Role.ADMIN:
        return "TRUE", []
    scope, params = me.resident_scope("w.resident_id")
    return f"w.resident_id IS NOT NULL AND {scope}", params


async def _scoped_band(db: Db, me: Principal, device_id: str) -> dict[str, object]:
    scope, params = _scope(me)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT device_id, resident_id, model, firmware, expected_interval_s,"
            f" revoked_at IS NOT NULL AS revoked FROM wristbands w WHERE device_id = %s"
            f" AND {scope}",
            [device_id, *params],
        )
        row = await cur.fetchone()
    if row is None:
        raise not_found(f"wristband {device_id}")
    return row


@router.get("/wristbands", response_model=list[WristbandOut])
async def list_bands(me: Manager, db: Db) -> Response:
    scope, params = _scope(me)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT device_id, resident_id, model, firmware, expected_interval_s,"
            f" revoked_at IS NOT NULL AS revoked FROM wristbands w WHERE {scope}"
            " ORDER BY device_id LIMIT 10000",
            params,
        )
        return json_response(await cur.fetchall())


@router.post(
    "/wristbands",
    response_model=WristbandCredentials,
    status_code=201,
    responses={409: {"description": "the band or its resident is already paired"}},
)
async def provision(body: WristbandCreate, me: Manager, ctx: Ctx, db: Tx) -> Response:
    """Registers a band; the MQTT password is in this answer only (hashed at rest)."""
    if body.resident_id is not None:
        await ensure_resident(db, me, body.resident_id)
    elif me.role is not Role.ADMIN:
        raise Problem(403, "only an admin keeps unpaired bands; give resident_id")
    try:
        (creds,) = await provision_wristbands(
            db,
            [(body.device_id, body.resident_id)],
            model=body.model,
            firmware=body.firmware,
            expected_interval_s=body.expected_interval_s,
        )
    except RegistryError as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(
        me,
        "provision_wristband",
        f"wristband:{body.device_id}",
        at=utcnow(),
        resident_id=body.resident_id,
    )
    return json_response(
        {
            "device_id": creds.device_id,
            "mqtt_username": creds.mqtt_username,
            "mqtt_password": creds.mqtt_password,
        },
        status=201,
    )


@router.post(
    "/wristbands/{device_id}/pair",
    response_model=WristbandOut,
    responses={
        404: {"description": "no such band, or resident, in your scope"},
        409: {"description": "the band is revoked, or the resident wears another band"},
    },
)
async def pair(device_id: str, body: WristbandPair, me: Manager, ctx: Ctx, db: Tx) -> Response:
    """Pair a band with a resident: one kept unpaired (an admin's stock) when it is handed
    out, or one moved from another resident (who then has none). Before 2026-12-04 a band
    provisioned unpaired could never be paired."""
    band = await _scoped_band(db, me, device_id)
    await ensure_resident(db, me, body.resident_id)
    try:
        before = await pair_wristband(db, device_id, body.resident_id)
    except RegistryError as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(me, "pair_wristband", f"wristband:{device_id}", at=utcnow(),
                     resident_id=body.resident_id)  # fmt: skip
    if before is not None and before != body.resident_id:  # the previous wearer's record too
        ctx.audit.record(me, "unpair_wristband", f"wristband:{device_id}", at=utcnow(),
                         resident_id=before)  # fmt: skip
    return json_response({**band, "resident_id": body.resident_id})


@router.post(
    "/wristbands/{device_id}/rotate",
    response_model=WristbandCredentials,
    responses={404: {"description": "no such active band in your scope"}},
)
async def rotate(device_id: str, me: Manager, ctx: Ctx, db: Tx) -> Response:
    """A new MQTT password (returned once); the old one stops working at the next broker reload."""
    band = await _scoped_band(db, me, device_id)
    if band["revoked"]:
        raise Problem(409, f"wristband {device_id} is revoked; provision a new one")
    secret = new_secret()
    await db.execute(
        "UPDATE wristbands SET secret_hash = %s WHERE device_id = %s",
        (hash_secret(secret), device_id),
    )
    ctx.audit.record(
        me,
        "rotate_wristband",
        f"wristband:{device_id}",
        at=utcnow(),
        resident_id=_int(band["resident_id"]),
    )
    return json_response(
        {"device_id": device_id, "mqtt_username": device_id, "mqtt_password": secret}
    )


@router.post(
    "/wristbands/{device_id}/revoke",
    status_code=204,
    responses={404: {"description": "no such band in your scope"}},
)
async def revoke(device_id: str, me: Manager, ctx: Ctx, db: Tx) -> None:
    band = await _scoped_band(db, me, device_id)
    if not await revoke_wristband(db, device_id):
        raise Problem(409, f"wristband {device_id} is already revoked")
    ctx.audit.record(
        me,
        "revoke_wristband",
        f"wristband:{device_id}",
        at=utcnow(),
        resident_id=_int(band["resident_id"]),
    )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
