"""Users, login sessions and API keys in the database (the identity half of the API).

Functions take an open connection and leave committing to the caller, except
where noted. Hashing and token formats are in :mod:`api.security`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from api.principal import Principal, Role
from api.security import (
    InvalidToken,
    api_key_prefix,
    digests_match,
    hash_password,
    new_api_key,
    new_refresh_token,
    split_refresh_token,
    token_digest,
)

Conn = psycopg.AsyncConnection[TupleRow]


class IdentityError(Exception):
    """A user or key change that cannot be made (duplicate name, unknown resident...)."""


@dataclass(frozen=True, slots=True)
class LoginRow:
    user_id: int
    password_hash: str
    disabled: bool


async def create_user(
    conn: Conn,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    district: str | None = None,
    worker_id: str | None = None,
    resident_ids: Sequence[int] = (),
) -> int:
    if len(password) < 8:
        raise IdentityError("a password has at least 8 characters")
    district, worker_id = district or None, worker_id or None  # "" is none (a CLI's --district "")
    if (role is Role.FAMILY) != bool(resident_ids):
        # a family account sees only its linked residents: without one it would see
        # nothing (no route links one later); any other role is scoped otherwise
        raise IdentityError(
            "a family account needs at least one resident"
            if role is Role.FAMILY
            else "only family accounts are linked to residents"
        )
    try:
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO users (username, display_name, role, password_hash, district,"
                " worker_id) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    username.lower(),
                    display_name,
                    role.value,
                    hash_password(password),
                    district,
                    worker_id,
                ),
            )
            row = await cur.fetchone()
            if row is None:
                raise RuntimeError("INSERT ... RETURNING gave no row for a user")
            user_id = int(row[0])
            for rid in dict.fromkeys(resident_ids):  # once each: a repeat is no new link
                await conn.execute(
                    "INSERT INTO family_links (user_id, resident_id) VALUES (%s, %s)",
                    (user_id, rid),
                )
    except psycopg.errors.UniqueViolation as exc:
        raise IdentityError(f"the username {username!r} is taken") from exc
    except psycopg.errors.CheckViolation as exc:
        raise IdentityError(
            "invalid user: usernames are 2-64 of a-z 0-9 . _ @ -; operators and supervisors"
            " need a district; workers (and only workers) a worker id"
        ) from exc
    except psycopg.errors.ForeignKeyViolation as exc:
        raise IdentityError("a linked resident does not exist") from exc
    return user_id


async def is_service_worker(conn: Conn, worker_id: str) -> bool:
    """Whether dispatch knows ``worker_id``: a worker account names one (``users`` has no
    foreign key to ``service_workers``, so set-up scripts may create the account first)."""
    cur = await conn.execute("SELECT 1 FROM service_workers WHERE worker_id = %s", (worker_id,))
    return await cur.fetchone() is not None


async def find_login(conn: Conn, username: str) -> LoginRow | None:
    cur = await conn.execute(
        "SELECT id, password_hash, disabled_at IS NOT NULL FROM users WHERE username = %s",
        (username.lower(),),
    )
    row = await cur.fetchone()
    return LoginRow(int(row[0]), str(row[1]), bool(row[2])) if row else None


async def user_roles(conn: Conn, user_ids: Sequence[int]) -> dict[int, str]:
    """The role of each of ``user_ids`` found (a disabled user's too: their past acts)."""
    if not user_ids:
        return {}
    cur = await conn.execute("SELECT id, role FROM users WHERE id = ANY(%s)", (list(user_ids),))
    return {int(i): str(r) for i, r in await cur.fetchall()}


async def open_session(
    conn: Conn, user_id: int, *, now: datetime, ttl: timedelta
) -> tuple[uuid.UUID, str]:
    sid = uuid.uuid4()
    refresh = new_refresh_token(sid)
    await conn.execute(
        "INSERT INTO auth_sessions (id, user_id, refresh_hash, created_at, refreshed_at,"
        " expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (sid, user_id, token_digest(refresh), now, now, now + ttl),
    )
    return sid, refresh


async def rotate_session(
    conn: Conn, refresh: str, *, now: datetime, ttl: timedelta
) -> tuple[int, uuid.UUID, str]:
    """A new refresh token for a valid one; a replayed old one revokes the whole family."""
    sid = split_refresh_token(refresh)
    cur = await conn.execute(
        "SELECT s.user_id, s.refresh_hash, s.expires_at, s.revoked_at IS NOT NULL,"
        " u.disabled_at IS NOT NULL FROM auth_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id = %s FOR UPDATE OF s",
        (sid,),
    )
    row = await cur.fetchone()
    if row is None:
        raise InvalidToken("the refresh token is not valid")
    user_id, digest, expires_at, revoked, disabled = row
    if revoked or disabled or expires_at <= now:
        raise InvalidToken("the session has ended; log in again")
    if not digests_match(refresh, digest):
        await revoke_session(conn, sid, reason="refresh token reused")
        await conn.commit()
        raise InvalidToken("the refresh token was already used; the session is revoked")
    new = new_refresh_token(sid)
    await conn.execute(
        "UPDATE auth_sessions SET refresh_hash = %s, refreshed_at = %s, expires_at = %s"
        " WHERE id = %s",
        (token_digest(new), now, now + ttl, sid),
    )
    return int(user_id), sid, new


async def revoke_session(conn: Conn, sid: uuid.UUID, *, reason: str) -> None:
    await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = %s"
        " WHERE id = %s AND revoked_at IS NULL",
        (reason, sid),
    )


async def disable_user(conn: Conn, user_id: int) -> bool | None:
    """Disable an account and revoke its sessions: its tokens stop working (other API
    processes within their principal cache time) and it cannot sign in. True if done,
    False if it was disabled already, None if there is no such user. No commit."""
    cur = await conn.execute(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = %s"
        " RETURNING disabled_at = now()",
        (user_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.execute(
        "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = 'user disabled'"
        " WHERE user_id = %s AND revoked_at IS NULL",
        (user_id,),
    )
    return bool(row[0])


async def revoke_api_key(conn: Conn, key_id: int) -> bool | None:
    """Revoke a machine client's key (True; False if revoked already; None if unknown).
    No commit."""
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
        " RETURNING revoked_at = now()",
        (key_id,),
    )
    row = await cur.fetchone()
    return None if row is None else bool(row[0])


async def load_user_principal(
    conn: Conn, user_id: int, sid: uuid.UUID, *, now: datetime
) -> Principal | None:
    """The principal of a live session; None if it was revoked or the user disabled."""
    cur = await conn.execute(
        "SELECT u.username, u.display_name, u.role, u.district, u.worker_id,"
        " ARRAY(SELECT resident_id FROM family_links f WHERE f.user_id = u.id"
        "       ORDER BY resident_id)"
        " FROM auth_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.id = %s AND s.user_id = %s AND s.revoked_at IS NULL AND s.expires_at > %s"
        " AND u.disabled_at IS NULL",
        (sid, user_id, now),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    username, display_name, role, district, worker_id, resident_ids = row
    return Principal.build(
        actor=f"user:{user_id}",
        role=Role(role),
        user_id=user_id,
        username=username,
        display_name=display_name,
        district=district,
        worker_id=worker_id,
        resident_ids=tuple(int(r) for r in resident_ids),
        session_id=str(sid),
    )


async def create_api_key(
    conn: Conn,
    *,
    name: str,
    scopes: Sequence[str],
    district: str | None = None,
    created_by: int | None = None,
) -> tuple[int, str]:
    """(id, key): the key is returned once and only its hash is stored."""
    prefix, key = new_api_key()
    try:
        cur = await conn.execute(
            "INSERT INTO api_keys (prefix, key_hash, name, scopes, district, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (prefix, token_digest(key), name, list(scopes), district, created_by),
        )
    except psycopg.errors.CheckViolation as exc:
        raise IdentityError(f"unknown scope in {sorted(scopes)}") from exc
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError("INSERT ... RETURNING gave no row for an API key")
    return int(row[0]), key


async def load_key_principal(conn: Conn, key: str) -> Principal | None:
    prefix = api_key_prefix(key)
    if prefix is None:
        return None
    cur = await conn.execute(
        "SELECT id, key_hash, name, scopes, district FROM api_keys"
        " WHERE prefix = %s AND revoked_at IS NULL",
        (prefix,),
    )
    row = await cur.fetchone()
    if row is None or not digests_match(key, str(row[1])):
        return None
    key_id, _, name, scopes, district = row
    return Principal.build(
        actor=f"key:{key_id}",
        role=Role.INTEGRATION,
        username=name,
        display_name=name,
        district=district,
        scopes=frozenset(scopes),
    )
