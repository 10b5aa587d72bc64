"""Keyset pagination: ``{"items": [...], "next_cursor": str|null}`` with ``?limit=&cursor=``.

The cursor is an opaque URL-safe encoding of the last row's sort key; a cursor
that does not decode answers 400, never a server error.
"""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from api.problems import Problem

MAX_LIMIT = 500


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = msgspec.json.decode(raw)
    except (ValueError, msgspec.DecodeError) as exc:
        raise Problem(400, "the cursor is not one this API gave out") from exc
    if not isinstance(key, list) or len(key) != arity:
        raise Problem(400, "the cursor is not one this API gave out")
    return key


def page(items: list[dict[str, Any]], *, limit: int, key: list[str]) -> dict[str, Any]:
    """``items`` fetched with ``limit + 1``: trims it and builds the next cursor."""
    more = len(items) > limit
    items = items[:limit]
    nxt = encode_cursor([items[-1][k] for k in key]) if more and items else None
    return {"items": items, "next_cursor": nxt}


def decode_id_cursor(cursor: str | None) -> int | None:
    """The last id of the previous page (lists ordered by id)."""
    key = decode_cursor(cursor, arity=1)
    if key is None:
        return None
    value = key[0]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise Problem(400, "the cursor is not one this API gave out")
    return value
