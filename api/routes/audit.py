"""The audit log (admins, and API keys with ``audit:read``: a district-bound key sees its
district's residents' entries only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from psycopg.rows import dict_row

from api.deps import Ctx, Db, require
from api.pagination import MAX_LIMIT, decode_id_cursor, page
from api.principal import Perm, Principal
from api.schemas import MAX_ID, AuditOut, Page
from api.scoping import json_response

router = APIRouter(tags=["admin"])
Auditor = Annotated[Principal, Depends(require(Perm.READ_AUDIT))]


@router.get("/audit", response_model=Page[AuditOut])
async def audit_log(
    *,
    me: Auditor,
    ctx: Ctx,
    db: Db,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    actor: Annotated[str | None, Query(max_length=50)] = None,
    action: Annotated[str | None, Query(max_length=50)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> Response:
    """Newest first. Entries queued by requests a moment ago are written first.

    In the caller's resident scope: a key bound to a district reads the entries about
    that district's residents only, and none about no resident (before 2026-12-04 it
    read who looked at whom across the city); admins and city-wide keys read all.
    """
    await ctx.audit.flush(db)  # on this request's connection: see AuditWriter.flush
    scope, scope_args = me.resident_scope("resident_id")
    where: list[str] = [scope]
    args: list[object] = [*scope_args]
    for column, value in (("resident_id", resident_id), ("actor", actor), ("action", action)):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if since is not None:
        where.append("at >= %s")
        args.append(since)
    before = decode_id_cursor(cursor)
    if before is not None:
        where.append("id < %s")
        args.append(before)
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, at, actor, role, action, resource, resident_id FROM audit_log"
            f" WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
            [*args, limit + 1],
        )
        rows = await cur.fetchall()
    return json_response(page(rows, limit=limit, key=["id"]))
