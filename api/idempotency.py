"""Idempotency keys on POSTs that create things (``Idempotency-Key`` header).

The first answer to (principal, key) is stored in the same transaction as what
it created, so a retried request after a lost response gets the same answer
and creates nothing twice. The same key with a different body answers 422.
Concurrent duplicates are serialised by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psycopg
from fastapi.responses import Response
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from api.principal import Principal
from api.problems import Problem
from api.scoping import json_response

MAX_KEY_LENGTH = 200


def request_hash(method: str, path: str, body: Any) -> str:
    return hashlib.sha256(msgspec.json.encode([method, path, body], order="sorted")).hexdigest()


async def idempotent(conn: psycopg.AsyncConnection[TupleRow], me: Principal, key: str | None,
                     *, fingerprint: str,
                     create: Callable[[], Awaitable[tuple[int, Any]]]) -> Response:  # fmt: skip
    """Run ``create`` once per key; it returns (status, JSON body) and must not commit."""
    if key is None:
        status, body = await create()
        return json_response(body, status=status)
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise Problem(400, f"Idempotency-Key is 1 to {MAX_KEY_LENGTH} characters")
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{me.actor}|{key}",)
    )
    cur = await conn.execute(
        "SELECT request_hash, status, response FROM idempotency_keys"
        " WHERE principal = %s AND key = %s",
        (me.actor, key),
    )
    row = await cur.fetchone()
    if row is not None:
        if row[0] != fingerprint:
            raise Problem(422, "this Idempotency-Key was used with a different request")
        return json_response(row[2], status=int(row[1]))
    status, body = await create()
    encoded = msgspec.json.decode(msgspec.json.encode(body))  # datetimes -> ISO strings
    await conn.execute(
        "INSERT INTO idempotency_keys (principal, key, request_hash, status, response)"
        " VALUES (%s, %s, %s, %s, %s)",
        (me.actor, key, fingerprint, status, Jsonb(encoded)),
    )
    return json_response(body, status=status)
