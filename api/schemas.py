"""Request and response shapes at the HTTP edge (pydantic; the OpenAPI is built from them).

Hot read paths encode their answers with msgspec and declare these models for
the documentation only; the tests check the two agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi import Path
from pydantic import BaseModel, Field

from eldercare.json_files import Strict

T = TypeVar("T")
MAX_ID = 2**63 - 1  # a bigint id
RoleName = Literal["admin", "supervisor", "operator", "worker", "family"]
Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


# --- identity ---------------------------------------------------------------
class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class MeOut(BaseModel):
    id: int | None
    username: str
    role: RoleName | Literal["integration"]
    display_name: str
    district: str | None
    worker_id: str | None
    resident_ids: list[int]


class UserCreate(Strict):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._@-]{1,63}$")
    password: str = Field(min_length=8, max_length=200)
    role: RoleName
    display_name: str = Field(default="", max_length=200)
    district: str | None = Field(default=None, min_length=1, max_length=100)
    worker_id: str | None = Field(default=None, min_length=1, max_length=100)
    resident_ids: list[int] = Field(default_factory=list, max_length=20)


class UserOut(BaseModel):
    id: int
    username: str
    role: RoleName


KeyScope = Literal[
    "residents:read",
    "telemetry:read",
    "alerts:read",
    "alerts:write",
    "orders:read",
    "orders:write",
    "audit:read",
]


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[KeyScope] = Field(min_length=1)
    district: str | None = Field(default=None, max_length=100)


class ApiKeyOut(BaseModel):
    id: int
    key: str = Field(description="shown once; only its hash is stored")


# --- residents --------------------------------------------------------------
class Contact(BaseModel):
    name: str
    relation: str
    phone: str


class Geofence(BaseModel):
    id: int
    name: str
    lat: float
    lon: float
    radius_m: float


class GeofenceIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    lat: Lat
    lon: Lon
    radius_m: float = Field(gt=0, le=50_000)


class ResidentSummary(BaseModel):
    id: int
    name: str
    district: str
    birth_year: int
    living_alone: bool
    open_alerts: int
    home: dict[str, float] | None = None  # the centre's map; not for families or workers
    left_at: datetime | None = None  # listed only with include_left


class Away(BaseModel):
    starts_at: datetime
    ends_at: datetime
    reason: str


class ResidentDetail(BaseModel):
    id: int
    external_ref: str | None
    name: str
    birth_year: int
    sex: str | None
    district: str
    address: str
    home: dict[str, float] | None
    living_alone: bool
    conditions: list[str]
    contacts: list[Contact]
    geofences: list[Geofence]
    thresholds: dict[str, object]
    wristbands: list[dict[str, object]]
    left_at: datetime | None = None  # left the service (POST /residents/{id}/leave)
    left_reason: str | None = None
    away: Away | None = None  # away from home, now or planned (PUT /residents/{id}/away)


# --- status (family view) -----------------------------------------------------
class Vital(BaseModel):
    value: float | None
    at: datetime | None
    news2: int | None


class Location(BaseModel):
    lat: float
    lon: float
    accuracy_m: float | None
    at: datetime | None


class Progress(BaseModel):
    worker_name: str | None
    eta_s: int | None
    status: str


class StatusAlert(BaseModel):
    id: int
    type: str
    severity: str
    state: str
    opened_at: datetime
    progress: Progress | None


class Services(BaseModel):
    upcoming: list[dict[str, object]]
    past: list[dict[str, object]]


class StatusOut(BaseModel):
    resident_id: int
    name: str
    state: Literal["ok", "attention"]
    reasons: list[str]
    last_seen: datetime | None
    battery_pct: int | None
    worn: bool | None
    vitals: dict[str, Vital]
    steps_today: int | None
    location: Location | None
    alerts: list[StatusAlert]
    services: Services
    away: Away | None = None  # away from home, as the centre recorded it


# --- telemetry ----------------------------------------------------------------
class TelemetryBucket(BaseModel):
    bucket: datetime
    readings: int
    hr_avg: float | None
    hr_min: int | None
    hr_max: int | None
    spo2_avg: float | None
    spo2_min: int | None
    bp_sys_avg: float | None
    bp_dia_avg: float | None
    skin_temp_avg: float | None
    steps_max: int | None
    battery_min: int | None
    worn_share: float | None


class TelemetryOut(BaseModel):
    resident_id: int
    start: datetime
    end: datetime
    bucket_s: int
    items: list[TelemetryBucket]


# --- wristbands ---------------------------------------------------------------
class WristbandCreate(Strict):
    device_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    resident_id: int | None = None
    model: str = Field(default="", max_length=100)
    firmware: str = Field(default="", max_length=100)
    expected_interval_s: int = Field(default=60, ge=1, le=86_400)


class WristbandPair(Strict):
    resident_id: int = Field(ge=1, le=MAX_ID)


class WristbandOut(BaseModel):
    device_id: str
    resident_id: int | None
    model: str
    firmware: str
    expected_interval_s: int
    revoked: bool


class WristbandCredentials(BaseModel):
    device_id: str
    mqtt_username: str
    mqtt_password: str = Field(description="shown once; only its hash is stored")


# --- alerts -------------------------------------------------------------------
class AlertOut(BaseModel):
    id: int
    resident_id: int
    device_id: str | None
    type: str
    severity: str
    state: str
    outcome: str | None
    opened_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    repeat_count: int
    resident_name: str
    district: str
    progress: Progress | None = None  # who is coming, when (the status view's)


class Transition(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    actor_name: str | None = None  # the centre only: the user's or worker's name
    note: str


class AlertDetail(AlertOut):
    detail: dict[str, object]
    resident: dict[str, object]
    transitions: list[Transition]


class NoteIn(Strict):
    note: str = Field(default="", max_length=2000)


class ResolveIn(Strict):
    outcome: Literal["actionable", "false", "technical"]
    note: str = Field(default="", max_length=2000)


# --- audit --------------------------------------------------------------------
class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    resident_id: int | None


ResidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="a resident id")]
AlertId = Annotated[int, Path(ge=1, le=MAX_ID, description="an alert id")]
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
