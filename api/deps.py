"""FastAPI dependencies: the app's context, a database connection, who is asking.

The principal of a bearer token (or API key) is looked up once and kept for
``api_principal_cache_s`` in-process: a revocation made through this process
takes effect at once (the entries are dropped), one made elsewhere within that
time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from api.audit import AuditWriter
from api.identity import load_key_principal, load_user_principal
from api.principal import Perm, Principal
from api.problems import Problem, forbidden
from api.security import API_KEY_PREFIX, InvalidToken, LoginLimiter, read_access_token
from eldercare.settings import Settings

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
_CACHE_MAX = 50_000


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    pool: AsyncConnectionPool
    audit: AuditWriter
    limiter: LoginLimiter
    secret: str
    principals: dict[str, tuple[float, Principal]] = field(default_factory=dict)
    hub: object | None = None  # api.live.LiveHub, when the broker is configured

    def forget_session(self, session_id: str) -> None:
        """Drop cached principals of a revoked session (this process sees it at once)."""
        for token, (_, p) in list(self.principals.items()):
            if p.session_id == session_id:
                del self.principals[token]

    def forget_actor(self, actor: str) -> None:
        """Drop cached principals of a disabled user or revoked key (``user:7``,
        ``key:3``): this process refuses their tokens at once."""
        for token, (_, p) in list(self.principals.items()):
            if p.actor == actor:
                del self.principals[token]

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.api_access_ttl_s)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.api_refresh_ttl_s)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def context(request: Request) -> ApiContext:  # async: sync dependencies use a thread
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


async def connection(ctx: Ctx) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """A pooled connection in autocommit: reads cost one round trip, no BEGIN/COMMIT.

    Code that writes in several statements uses :data:`Tx` or its own
    ``conn.transaction()`` (as ``alerts.store`` does).
    """
    async with ctx.pool.connection() as conn:
        yield conn


async def transaction(ctx: Ctx) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """A pooled connection in one transaction, committed when the handler returns
    (rolled back if it raises)."""
    async with ctx.pool.connection() as conn:
        await conn.set_autocommit(False)
        try:
            yield conn
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        finally:
            await conn.set_autocommit(True)


# scope="function": the connection goes back (and a transaction commits) when the
# handler returns, before the response is sent, so a client that got 2xx can
# rely on the write being committed (the default, "request", commits afterwards;
# tests/integration/test_api_commit.py).
Db = Annotated[psycopg.AsyncConnection[TupleRow], Depends(connection, scope="function")]
Tx = Annotated[psycopg.AsyncConnection[TupleRow], Depends(transaction, scope="function")]


async def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(
            401, "send Authorization: Bearer <access token or API key>", headers=_UNAUTHORIZED
        )
    return token.strip()


async def principal_for_token(ctx: ApiContext, token: str) -> Principal:
    """The principal of an access token or API key; 401 if it is not (or no longer) valid.

    Cached by the token itself: a hit costs one dict lookup (no signature check, no
    query). An entry lives ``api_principal_cache_s``, never past the token's expiry.
    """
    mono = time.monotonic()
    hit = ctx.principals.get(token)
    if hit is not None and hit[0] > mono:
        return hit[1]
    if not (token.isascii() and token.isprintable()):  # a NUL reached the database as a key
        raise Problem(401, "not a token: unprintable characters", headers=_UNAUTHORIZED)
    now = utcnow()
    ttl = ctx.settings.api_principal_cache_s
    if token.startswith(API_KEY_PREFIX):
        async with ctx.pool.connection() as conn:
            found = await load_key_principal(conn, token)
    else:
        try:
            claims = read_access_token(token, secret=ctx.secret, now=now)
        except InvalidToken as exc:
            raise Problem(401, str(exc), headers=_UNAUTHORIZED) from exc
        ttl = min(ttl, (claims.expires_at - now).total_seconds())
        async with ctx.pool.connection() as conn:
            found = await load_user_principal(conn, claims.user_id, claims.session_id, now=now)
    if found is None:
        ctx.principals.pop(token, None)
        raise Problem(
            401, "the credentials have been revoked or the session has ended", headers=_UNAUTHORIZED
        )
    if len(ctx.principals) >= _CACHE_MAX:
        ctx.principals.clear()
    ctx.principals[token] = (mono + ttl, found)
    return found


async def current_principal(request: Request, ctx: Ctx) -> Principal:
    return await principal_for_token(ctx, await bearer(request))


Me = Annotated[Principal, Depends(current_principal)]


def require(perm: Perm) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the principal, if their role (or key) has ``perm``; else 403."""

    async def check(principal: Me) -> Principal:
        if not principal.can(perm):
            raise forbidden()
        return principal

    return check
