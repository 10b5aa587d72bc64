"""Who is asking, what their role lets them do, and which residents they may see.

Pure: the permission table and the SQL scope predicate are functions of the
:class:`Principal` value. Routes combine both: an action the role never has
answers 403; a resource outside the principal's scope answers 404, the same as
one that does not exist, so nobody learns about other people's records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    WORKER = "worker"
    FAMILY = "family"
    INTEGRATION = "integration"  # a machine client with an API key


CENTRE_ROLES: Final = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR})  # the centre's staff


class Perm(StrEnum):
    READ_RESIDENTS = "residents:read"
    WRITE_RESIDENTS = "residents:write"
    READ_HEALTH = "telemetry:read"  # status, telemetry, location
    MANAGE_WRISTBANDS = "wristbands:write"
    READ_ALERTS = "alerts:read"
    ACT_ALERTS = "alerts:write"
    READ_ORDERS = "orders:read"
    BOOK_ORDERS = "orders:book"
    MANAGE_ORDERS = "orders:write"
    WORK_ORDERS = "orders:work"  # accept, reject, check in/out: the worker's own
    READ_WORKERS = "workers:read"
    MANAGE_WORKERS = "workers:write"
    READ_REPORTS = "reports:read"
    READ_AUDIT = "audit:read"
    SET_THRESHOLDS = "thresholds:write"  # a clinician's per-resident alert thresholds
    MANAGE_USERS = "users:write"


_P = Perm
_CENTRE: Final = frozenset(
    {
        _P.READ_RESIDENTS,
        _P.WRITE_RESIDENTS,
        _P.READ_HEALTH,
        _P.MANAGE_WRISTBANDS,
        _P.READ_ALERTS,
        _P.ACT_ALERTS,
        _P.READ_ORDERS,
        _P.BOOK_ORDERS,
        _P.MANAGE_ORDERS,
        _P.READ_WORKERS,
        _P.MANAGE_WORKERS,
        _P.READ_REPORTS,
    }
)
PERMISSIONS: Final[dict[Role, frozenset[Perm]]] = {
    Role.ADMIN: frozenset(Perm) - {_P.WORK_ORDERS},
    Role.SUPERVISOR: _CENTRE | {_P.SET_THRESHOLDS},
    Role.OPERATOR: _CENTRE - {_P.READ_REPORTS},
    Role.WORKER: frozenset(
        {
            _P.READ_RESIDENTS,
            _P.READ_HEALTH,
            _P.READ_ALERTS,
            _P.READ_ORDERS,
            _P.WORK_ORDERS,
            _P.READ_WORKERS,
        }
    ),
    Role.FAMILY: frozenset(
        {_P.READ_RESIDENTS, _P.READ_HEALTH, _P.READ_ALERTS, _P.READ_ORDERS, _P.BOOK_ORDERS}
    ),
    Role.INTEGRATION: frozenset(),  # exactly the key's scopes
}
# API key scopes (the api_keys.scopes check constraint) -> permissions
KEY_SCOPES: Final[dict[str, frozenset[Perm]]] = {
    "residents:read": frozenset({_P.READ_RESIDENTS}),
    "telemetry:read": frozenset({_P.READ_HEALTH}),
    "alerts:read": frozenset({_P.READ_ALERTS}),
    "alerts:write": frozenset({_P.ACT_ALERTS}),
    "orders:read": frozenset({_P.READ_ORDERS, _P.READ_WORKERS}),
    "orders:write": frozenset({_P.BOOK_ORDERS, _P.MANAGE_ORDERS}),
    "audit:read": frozenset({_P.READ_AUDIT}),
}

# The residents of a worker's current orders (offered to them, accepted, under way):
# a worker sees these and no one else (dispatch's work_orders, migration 006).
WORKER_RESIDENTS_SQL: str | None = (
    "SELECT resident_id FROM work_orders WHERE worker_id = %s"
    " AND state IN ('offered', 'accepted', 'en_route', 'on_site')"
)


@dataclass(frozen=True, slots=True)
class Principal:
    actor: str  # 'user:<id>' | 'key:<id>': what the audit log records
    role: Role
    user_id: int | None = None
    username: str = ""
    display_name: str = ""
    district: str | None = None  # operators, supervisors, district-bound API keys
    worker_id: str | None = None
    resident_ids: tuple[int, ...] = ()  # family: the linked residents
    scopes: frozenset[str] = frozenset()  # API keys
    session_id: str | None = None
    perms: frozenset[Perm] = field(default=frozenset())

    @classmethod
    def build(cls, **kwargs: object) -> Principal:
        p = cls(**kwargs)  # type: ignore[arg-type]
        perms = set(PERMISSIONS[p.role])
        for scope in p.scopes:
            perms |= KEY_SCOPES.get(scope, frozenset())
        object.__setattr__(p, "perms", frozenset(perms))
        return p

    def can(self, perm: Perm) -> bool:
        return perm in self.perms

    @property
    def full_precision(self) -> bool:
        """Families see a coarsened location; the centre and workers see it exactly."""
        return self.role is not Role.FAMILY

    def resident_scope(
        self, column: str, district_column: str | None = None
    ) -> tuple[str, list[object]]:
        """A SQL predicate on ``column`` (a resident id) with its parameters.

        ``district_column``: the residents' district column when the query joins
        residents (cheaper than the subquery). Columns are identifiers written in
        our code, never input.
        """
        if self.role in (Role.OPERATOR, Role.SUPERVISOR) or (
            self.role is Role.INTEGRATION and self.district is not None
        ):
            if district_column is not None:
                return f"{district_column} = %s", [self.district]
            return (
                f"{column} IN (SELECT resident_id FROM residents WHERE district = %s)",
                [self.district],
            )
        if self.role in (Role.ADMIN, Role.INTEGRATION):
            return "TRUE", []
        if self.role is Role.FAMILY:
            return f"{column} = ANY(%s)", [list(self.resident_ids)]
        if WORKER_RESIDENTS_SQL is None or self.worker_id is None:
            return "FALSE", []
        return f"{column} IN ({WORKER_RESIDENTS_SQL})", [self.worker_id]
