"""Residents: the scoped list, a profile with contacts, geofences and bands; new residents."""

from __future__ import annotations

from typing import Annotated, Any, Final

import psycopg
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response
from psycopg.rows import dict_row
from pydantic import Field, model_validator

from alerts.thresholds import ThresholdError, set_thresholds
from api.deps import Ctx, Db, Tx, require, utcnow
from api.idempotency import idempotent, request_hash
from api.pagination import MAX_LIMIT, decode_id_cursor, page
from api.principal import CENTRE_ROLES, Perm, Principal, Role
from api.problems import Problem, not_found
from api.routes.status import AWAY_SQL
from api.schemas import (
    Contact,
    Geofence,
    GeofenceIn,
    Page,
    ResidentDetail,
    ResidentId,
    ResidentSummary,
    RowId,
)
from api.scoping import ensure_resident, json_response
from dispatch.store import follow_resident_district
from eldercare.json_files import Strict
from eldercare.leaving import CannotLeaveError, leave_service, return_to_service
from eldercare.registry import (
    CONDITIONS,
    EmergencyContact,
    NewResident,
    RegistryError,
    add_residents,
    update_resident,
)

router = APIRouter(tags=["residents"])
ThresholdSetter = Annotated[Principal, Depends(require(Perm.SET_THRESHOLDS))]
Reader = Annotated[Principal, Depends(require(Perm.READ_RESIDENTS))]
Writer = Annotated[Principal, Depends(require(Perm.WRITE_RESIDENTS))]


class ThresholdsIn(Strict):
    """A clinician's overrides (see alerts/thresholds.py for the keys); null removes them."""

    overrides: dict[str, Any] | None
    reason: str = Field(default="", max_length=500)


class Thresholds(Strict):
    overrides: dict[str, Any]


class ResidentCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    birth_year: int = Field(ge=1900, le=2100)
    sex: str | None = Field(default=None, pattern="^(female|male)$")
    address: str = Field(default="", max_length=500)
    district: str = Field(min_length=1, max_length=100)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    living_alone: bool = False
    conditions: list[str] = Field(default_factory=list, max_length=len(CONDITIONS))
    contacts: list[Contact] = Field(default_factory=list, max_length=10)
    external_ref: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _whole_home(self) -> ResidentCreate:
        if (self.home_lat is None) != (self.home_lon is None):
            raise ValueError("home_lat and home_lon go together: give both or neither")
        return self


@router.get("/residents", response_model=Page[ResidentSummary])
async def list_residents(
    *,
    me: Reader,
    db: Db,
    district: Annotated[str | None, Query(max_length=100)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
    include_left: bool = False,
) -> Response:
    """The residents in the caller's scope; those who have left the service only with
    ``include_left`` (then with their ``left_at``)."""
    scope, params = me.resident_scope("r.resident_id", "r.district")
    where, args = [scope], list(params)
    if not include_left:
        where.append("r.left_at IS NULL")
    if district is not None:
        where.append("r.district = %s")
        args.append(district)
    if q:
        where.append("r.name ILIKE %s")
        args.append("%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    after = decode_id_cursor(cursor)
    if after is not None:
        where.append("r.resident_id > %s")
        args.append(after)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.resident_id AS id, r.name, r.district, r.birth_year, r.living_alone,"
            " r.home_lat, r.home_lon, r.left_at,"
            " (SELECT count(*) FROM alerts a WHERE a.resident_id = r.resident_id"
            "  AND a.closed_at IS NULL)::int AS open_alerts"
            f" FROM residents r WHERE {' AND '.join(where)} ORDER BY r.resident_id LIMIT %s",
            [*args, limit + 1],
        )
        rows = await cur.fetchall()
    centre = me.role in CENTRE_ROLES
    for row in rows:
        lat, lon = row.pop("home_lat"), row.pop("home_lon")
        row["home"] = (
            {"lat": lat, "lon": lon} if centre and lat is not None and lon is not None else None
        )
    return json_response(page(rows, limit=limit, key=["id"]))


async def resident_detail(db: Db, resident_id: int) -> dict[str, Any]:
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.resident_id AS id, r.external_ref, r.name, r.birth_year, r.sex, r.district,"
            " r.address, r.home_lat, r.home_lon, r.living_alone, r.conditions, r.left_at,"
            f" r.left_reason, {AWAY_SQL},"
            " r.emergency_contacts AS contacts,"
            " COALESCE((SELECT json_agg(json_build_object('id', g.id, 'name', g.name,"
            "  'lat', g.lat, 'lon', g.lon, 'radius_m', g.radius_m) ORDER BY g.id)"
            "  FROM resident_geofences g WHERE g.resident_id = r.resident_id), '[]') AS geofences,"
            " COALESCE((SELECT json_agg(json_build_object('device_id', w.device_id,"
            "  'model', w.model, 'revoked', w.revoked_at IS NOT NULL) ORDER BY w.device_id)"
            "  FROM wristbands w WHERE w.resident_id = r.resident_id), '[]') AS wristbands,"
            " (SELECT t.overrides FROM resident_alert_thresholds t"
            "  WHERE t.resident_id = r.resident_id) AS thresholds"
            " FROM residents r WHERE r.resident_id = %s",
            (resident_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise not_found(f"resident {resident_id}")
    lat, lon = row.pop("home_lat"), row.pop("home_lon")
    row["home"] = {"lat": lat, "lon": lon} if lat is not None and lon is not None else None
    row["thresholds"] = row["thresholds"] or {}  # a clinician's overrides; {}: the defaults
    return row


@router.get(
    "/residents/{resident_id}",
    response_model=ResidentDetail,
    responses={404: {"description": "no such resident in your scope"}},
)
async def get_resident(resident_id: ResidentId, me: Reader, ctx: Ctx, db: Db) -> Response:
    await ensure_resident(db, me, resident_id)
    row = await resident_detail(db, resident_id)
    if me.role is Role.WORKER:
        row["contacts"] = []  # a worker calls the centre, not the family
    ctx.audit.record(
        me, "read_resident", f"resident:{resident_id}", at=utcnow(), resident_id=resident_id
    )
    return json_response(row)


@router.post("/residents", response_model=ResidentDetail, status_code=201)
async def create_resident(
    body: ResidentCreate,
    me: Writer,
    ctx: Ctx,
    db: Tx,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    """Register a resident. Send an ``Idempotency-Key`` to make a retry safe."""
    if me.role is not Role.ADMIN and body.district != me.district:
        raise Problem(403, "you can only register residents in your own district")

    async def create() -> tuple[int, Any]:
        try:
            new = NewResident(
                name=body.name,
                birth_year=body.birth_year,
                sex=body.sex,
                address=body.address,
                district=body.district,
                home_lat=body.home_lat,
                home_lon=body.home_lon,
                living_alone=body.living_alone,
                conditions=tuple(body.conditions),
                emergency_contacts=tuple(
                    EmergencyContact(c.name, c.relation, c.phone) for c in body.contacts
                ),
                external_ref=body.external_ref,
            )
            (resident_id,) = await add_residents(db, [new])
        except RegistryError as exc:
            raise Problem(422, str(exc)) from exc
        except psycopg.errors.UniqueViolation as exc:
            raise Problem(409, "a resident with this external_ref exists") from exc
        ctx.audit.record(
            me, "create_resident", f"resident:{resident_id}", at=utcnow(), resident_id=resident_id
        )
        return 201, await resident_detail(db, resident_id)

    fingerprint = request_hash("POST", "/residents", body.model_dump(mode="json"))
    return await idempotent(db, me, idempotency_key, fingerprint=fingerprint, create=create)


NULLABLE: Final = frozenset({"sex", "home_lat", "home_lon", "external_ref"})


class ResidentUpdate(Strict):
    """The fields to change; those left out stay as they are. ``sex``, the home and
    ``external_ref`` may be set to null; the home's two coordinates go together."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    sex: str | None = Field(default=None, pattern="^(female|male)$")
    address: str | None = Field(default=None, max_length=500)
    district: str | None = Field(default=None, min_length=1, max_length=100)
    home_lat: float | None = Field(default=None, ge=-90, le=90)
    home_lon: float | None = Field(default=None, ge=-180, le=180)
    living_alone: bool | None = None
    conditions: list[str] | None = Field(default=None, max_length=len(CONDITIONS))
    contacts: list[Contact] | None = Field(default=None, max_length=10)
    external_ref: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _complete(self) -> ResidentUpdate:
        given = self.model_fields_set
        if ("home_lat" in given) != ("home_lon" in given) or (
            (self.home_lat is None) != (self.home_lon is None)
        ):
            raise ValueError("home_lat and home_lon go together: give both, or both null")
        for name in sorted(given - NULLABLE):
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, object]:
        """The given fields, as :func:`eldercare.registry.update_resident` takes them."""
        out: dict[str, object] = {n: getattr(self, n) for n in self.model_fields_set}
        if "contacts" in out:
            contacts = self.contacts or []
            out.pop("contacts")
            out["emergency_contacts"] = [
                EmergencyContact(c.name, c.relation, c.phone) for c in contacts
            ]
        return out


@router.patch(
    "/residents/{resident_id}",
    response_model=ResidentDetail,
    responses={
        404: {"description": "no such resident in your scope"},
        409: {"description": "another resident has this external_ref"},
    },
)
async def update_resident_record(
    resident_id: ResidentId, body: ResidentUpdate, me: Writer, ctx: Ctx, db: Tx
) -> Response:
    """Change a resident's record: contacts, address and home, conditions (a new
    diagnosis of COPD or dementia changes how their alerts are judged), living alone.
    The alert engine takes the change at its next profile refresh (30 s). Moving a
    resident to another district is for an admin. Before 2026-12-04 a record could
    only be created: a family's new phone number could not be entered."""
    await ensure_resident(db, me, resident_id)
    if (body.district is not None and me.role is not Role.ADMIN
            and body.district != me.district):  # fmt: skip
        raise Problem(403, "only an admin moves a resident to another district")
    changes = body.changes()
    try:
        await update_resident(db, resident_id, changes)
    except RegistryError as exc:
        raise Problem(422, str(exc)) from exc
    except psycopg.errors.UniqueViolation as exc:
        raise Problem(409, "another resident has this external_ref") from exc
    if body.district is not None:  # their visits not yet ended go with them
        await follow_resident_district(db, resident_id, body.district)
    ctx.audit.record(me, "update_resident", f"resident:{resident_id}", at=utcnow(),
                     resident_id=resident_id, fields=sorted(changes))  # fmt: skip
    return json_response(await resident_detail(db, resident_id))


class LeaveIn(Strict):
    reason: str = Field(min_length=1, max_length=500)


@router.post(
    "/residents/{resident_id}/leave",
    responses={
        404: {"description": "no such resident in your scope"},
        409: {"description": "left already, or an open alert or a visit under way first"},
    },
)
async def leave(resident_id: ResidentId, body: LeaveIn, me: Writer, ctx: Ctx, db: Tx) -> Response:
    """The resident leaves the service (moved into a care home, moved away, died): their
    band goes back to stock (unpaired) and the visits not begun are cancelled; nothing
    more is booked for them. Refused (409) while they have an open alert or a worker on
    the way or on site: close or finish that first. The record and its history stay;
    ``POST /residents/{id}/return`` undoes it."""
    await ensure_resident(db, me, resident_id)
    try:
        left = await leave_service(db, resident_id, reason=body.reason, actor=me.actor,
                                   now=utcnow())  # fmt: skip
    except CannotLeaveError as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(me, "resident_left", f"resident:{resident_id}", at=utcnow(),
                     resident_id=resident_id, cancelled_orders=list(left.cancelled_orders),
                     unpaired_bands=list(left.unpaired_bands))  # fmt: skip
    detail = await resident_detail(db, resident_id)
    return json_response({**detail, "unpaired_bands": list(left.unpaired_bands),
                          "cancelled_orders": list(left.cancelled_orders)})  # fmt: skip


@router.post(
    "/residents/{resident_id}/return",
    response_model=ResidentDetail,
    responses={
        404: {"description": "no such resident in your scope"},
        409: {"description": "the resident has not left the service"},
    },
)
async def come_back(resident_id: ResidentId, me: Writer, ctx: Ctx, db: Tx) -> Response:
    """Undo a leave (a mistake, a return from hospital care): the resident is watched
    and served again. Pair a band with them (``POST /wristbands/{id}/pair``) for alerts."""
    await ensure_resident(db, me, resident_id)
    try:
        await return_to_service(db, resident_id)
    except CannotLeaveError as exc:
        raise Problem(409, str(exc)) from exc
    ctx.audit.record(me, "resident_returned", f"resident:{resident_id}", at=utcnow(),
                     resident_id=resident_id)  # fmt: skip
    return json_response(await resident_detail(db, resident_id))


@router.post(
    "/residents/{resident_id}/geofences",
    response_model=Geofence,
    status_code=201,
    responses={404: {"description": "no such resident in your scope"}},
)
async def add_geofence(
    resident_id: ResidentId, body: GeofenceIn, me: Writer, ctx: Ctx, db: Tx
) -> Geofence:
    await ensure_resident(db, me, resident_id)
    cur = await db.execute(
        "INSERT INTO resident_geofences (resident_id, name, lat, lon, radius_m)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (resident_id, body.name, body.lat, body.lon, body.radius_m),
    )
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING gave no row for a geofence")
    ctx.audit.record(
        me, "add_geofence", f"resident:{resident_id}", at=utcnow(), resident_id=resident_id
    )
    return Geofence(
        id=int(row[0]), name=body.name, lat=body.lat, lon=body.lon, radius_m=body.radius_m
    )


@router.delete(
    "/residents/{resident_id}/geofences/{geofence_id}",
    status_code=204,
    responses={404: {"description": "no such geofence in your scope"}},
)
async def delete_geofence(
    resident_id: ResidentId, geofence_id: RowId, me: Writer, ctx: Ctx, db: Tx
) -> None:
    await ensure_resident(db, me, resident_id)
    cur = await db.execute(
        "DELETE FROM resident_geofences WHERE id = %s AND resident_id = %s",
        (geofence_id, resident_id),
    )
    if cur.rowcount != 1:
        raise not_found(f"geofence {geofence_id}")
    ctx.audit.record(
        me, "delete_geofence", f"resident:{resident_id}", at=utcnow(), resident_id=resident_id
    )


@router.put(
    "/residents/{resident_id}/thresholds",
    response_model=Thresholds,
    responses={
        404: {"description": "no such resident in your scope"},
        422: {"description": "overrides that cannot be used (the offending key is named)"},
    },
)
async def set_resident_thresholds(
    resident_id: ResidentId, body: ThresholdsIn, me: ThresholdSetter, ctx: Ctx, db: Tx
) -> Thresholds:
    """Override the resident's alert thresholds (NEWS2 bands, persistence, routine).

    The alert engine applies the change within its profile reload (30 s); who set
    it, when and why is kept in the threshold history.
    """
    await ensure_resident(db, me, resident_id)
    try:
        await set_thresholds(
            db, resident_id, body.overrides, set_by=me.actor, at=utcnow(), reason=body.reason
        )
    except ThresholdError as exc:
        raise Problem(422, str(exc)) from exc
    ctx.audit.record(
        me, "set_thresholds", f"resident:{resident_id}", at=utcnow(), resident_id=resident_id
    )
    return Thresholds(overrides=body.overrides or {})
