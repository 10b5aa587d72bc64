"""FastAPI dependencies: the app's context, a database connection, who is asking.

The principal of a bearer token is looked up once per session and kept for
``api_principal_cache_s`` in-process: a revocation made through this process
takes effect at once (the entry is dropped), one made elsewhere within that
time. API keys are cached the same way by their digest.
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
from api.security import API_KEY_PREFIX, InvalidToken, LoginLimiter, read_access_token, token_digest
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

    def forget(self, cache_key: str) -> None:
        self.principals.pop(cache_key, None)

    @property
    def access_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.api_access_ttl_s)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.api_refresh_ttl_s)


def utcnow() -> datetime:
    return datetime.now(UTC)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


async def connection(ctx: Ctx) -> AsyncIterator[psycopg.AsyncConnection[TupleRow]]:
    """One pooled connection for the request; committed when the handler returns."""
    async with ctx.pool.connection() as conn:
        yield conn


Db = Annotated[psycopg.AsyncConnection[TupleRow], Depends(connection)]


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(
            401, "send Authorization: Bearer <access token or API key>", headers=_UNAUTHORIZED
        )
    return token.strip()


async def principal_for_token(ctx: ApiContext, token: str) -> Principal:
    """The principal of an access token or API key; 401 if it is not (or no longer) valid."""
    now = utcnow()
    if token.startswith(API_KEY_PREFIX):
        cache_key = "k:" + token_digest(token)
        loader: Callable[[psycopg.AsyncConnection[TupleRow]], Awaitable[Principal | None]]
        loader = lambda conn: load_key_principal(conn, token)  # noqa: E731
    else:
        try:
            claims = read_access_token(token, secret=ctx.secret, now=now)
        except InvalidToken as exc:
            raise Problem(401, str(exc), headers=_UNAUTHORIZED) from exc
        cache_key = f"s:{claims.session_id}"
        loader = lambda conn: load_user_principal(  # noqa: E731
            conn, claims.user_id, claims.session_id, now=now
        )
    hit = ctx.principals.get(cache_key)
    mono = time.monotonic()
    if hit is not None and hit[0] > mono:
        return hit[1]
    async with ctx.pool.connection() as conn:
        found = await loader(conn)
    if found is None:
        ctx.forget(cache_key)
        raise Problem(
            401, "the credentials have been revoked or the session has ended", headers=_UNAUTHORIZED
        )
    if len(ctx.principals) >= _CACHE_MAX:
        ctx.principals.clear()
    ctx.principals[cache_key] = (mono + ctx.settings.api_principal_cache_s, found)
    return found


async def current_principal(request: Request, ctx: Ctx) -> Principal:
    return await principal_for_token(ctx, bearer(request))


Me = Annotated[Principal, Depends(current_principal)]


def require(perm: Perm) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the principal, if their role (or key) has ``perm``; else 403."""

    async def check(principal: Me) -> Principal:
        if not principal.can(perm):
            raise forbidden()
        return principal

    return check
