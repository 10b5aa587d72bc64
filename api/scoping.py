"""Shared route helpers: is this resident in the principal's scope (else 404), JSON answers."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from fastapi.responses import Response
from psycopg.rows import TupleRow

from api.principal import Principal
from api.problems import not_found

_ENCODER = msgspec.json.Encoder()


def encode(body: Any) -> bytes:
    return _ENCODER.encode(body)


def json_response(body: Any, *, status: int = 200) -> Response:
    """msgspec-encoded JSON (datetimes as ISO 8601): several times faster than the default."""
    return Response(_ENCODER.encode(body), status_code=status, media_type="application/json")


async def ensure_resident(
    conn: psycopg.AsyncConnection[TupleRow], me: Principal, resident_id: int
) -> None:
    """404 unless the resident exists and is in ``me``'s scope."""
    scope, params = me.resident_scope("r.resident_id", "r.district")
    cur = await conn.execute(
        f"SELECT 1 FROM residents r WHERE r.resident_id = %s AND {scope}",
        [resident_id, *params],
    )
    if await cur.fetchone() is None:
        raise not_found(f"resident {resident_id}")
