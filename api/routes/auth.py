"""Login (OAuth2 password flow), refresh, logout, who am I; users and API keys (admin)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import Response
from psycopg.rows import dict_row

from api.deps import Ctx, Db, Me, Tx, require, utcnow
from api.identity import (
    IdentityError,
    create_api_key,
    create_user,
    disable_user,
    find_login,
    is_service_worker,
    open_session,
    revoke_api_key,
    revoke_session,
    rotate_session,
)
from api.principal import Perm, Principal, Role
from api.problems import Problem, not_found
from api.schemas import (
    MAX_ID,
    ApiKeyCreate,
    ApiKeyOut,
    MeOut,
    RefreshIn,
    TokenOut,
    UserCreate,
    UserOut,
)
from api.scoping import json_response
from api.security import InvalidToken, issue_access_token, split_refresh_token, verify_password

router = APIRouter(tags=["auth"])
_BAD_LOGIN = "wrong username or password"


def _tokens(ctx: Ctx, user_id: int, sid: uuid.UUID, refresh: str) -> TokenOut:
    access = issue_access_token(
        user_id=user_id, session_id=sid, secret=ctx.secret, now=utcnow(), ttl=ctx.access_ttl
    )
    return TokenOut(
        access_token=access, refresh_token=refresh, expires_in=ctx.settings.api_access_ttl_s
    )


@router.post(
    "/auth/token",
    response_model=TokenOut,
    responses={
        401: {"description": "wrong username or password"},
        429: {"description": "too many failed logins"},
    },
)
async def login(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=200)],
    password: Annotated[str, Form(min_length=1, max_length=200)],
    ctx: Ctx,
    db: Tx,
) -> TokenOut:
    """OAuth2 password flow (form fields ``username``, ``password``)."""
    client = request.client.host if request.client else "-"
    key = f"{username.lower()}|{client}"
    now = utcnow()
    # counted as failed before the slow check, so concurrent guesses cannot all pass it
    wait = ctx.limiter.reserve(key, now)
    if wait is not None:
        raise Problem(
            429,
            f"too many failed logins; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    found = await find_login(db, username) if len(username) <= 64 else None
    ok = await asyncio.to_thread(verify_password, password, found.password_hash if found else None)
    if found is None or not ok or found.disabled:
        raise Problem(401, _BAD_LOGIN, headers={"WWW-Authenticate": "Bearer"})
    ctx.limiter.succeeded(key)
    sid, refresh = await open_session(db, found.user_id, now=now, ttl=ctx.refresh_ttl)
    return _tokens(ctx, found.user_id, sid, refresh)


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    responses={401: {"description": "invalid, reused or revoked refresh token"}},
)
async def refresh(body: RefreshIn, ctx: Ctx, db: Tx) -> TokenOut:
    try:
        user_id, sid, new = await rotate_session(
            db, body.refresh_token, now=utcnow(), ttl=ctx.refresh_ttl
        )
    except InvalidToken as exc:
        with contextlib.suppress(InvalidToken):  # a reuse revoked the session: drop it here
            ctx.forget_session(str(split_refresh_token(body.refresh_token)))
        raise Problem(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    return _tokens(ctx, user_id, sid, new)


@router.post("/auth/logout", status_code=204)
async def logout(me: Me, ctx: Ctx, db: Tx) -> None:
    """Revokes the session: its refresh token and every access token issued in it."""
    if me.session_id is None:
        raise Problem(400, "API keys do not log out; an admin revokes them")
    await revoke_session(db, uuid.UUID(me.session_id), reason="logout")
    ctx.forget_session(me.session_id)


@router.get("/me", response_model=MeOut)
async def whoami(me: Me) -> MeOut:
    return MeOut(
        id=me.user_id,
        username=me.username,
        role=me.role.value,
        display_name=me.display_name,
        district=me.district,
        worker_id=me.worker_id,
        resident_ids=list(me.resident_ids) if me.role is Role.FAMILY else [],
    )


@router.post("/users", response_model=UserOut, status_code=201, tags=["admin"])
async def add_user(
    body: UserCreate, admin: Annotated[Principal, Depends(require(Perm.MANAGE_USERS))], db: Tx
) -> UserOut:
    """A worker account names a registered service worker (else 422)."""
    # before 2026-12-04 any id was taken: an account for "None", an id no worker held,
    # was sent every live frame that named no worker (api.live.visible)
    if body.role == "worker" and body.worker_id and not await is_service_worker(db, body.worker_id):
        raise Problem(422, f"no service worker {body.worker_id!r}: register the worker first")
    try:
        user_id = await create_user(
            db,
            username=body.username,
            password=body.password,
            role=Role(body.role),
            display_name=body.display_name,
            district=body.district,
            worker_id=body.worker_id,
            resident_ids=body.resident_ids,
        )
    except IdentityError as exc:
        raise Problem(409 if "taken" in str(exc) else 422, str(exc)) from exc
    del admin
    return UserOut(id=user_id, username=body.username, role=body.role)


@router.post("/api-keys", response_model=ApiKeyOut, status_code=201, tags=["admin"])
async def add_api_key(
    body: ApiKeyCreate, admin: Annotated[Principal, Depends(require(Perm.MANAGE_USERS))], db: Tx
) -> ApiKeyOut:
    key_id, key = await create_api_key(
        db, name=body.name, scopes=body.scopes, district=body.district, created_by=admin.user_id
    )
    return ApiKeyOut(id=key_id, key=key)


Admin = Annotated[Principal, Depends(require(Perm.MANAGE_USERS))]
RowKey = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/users", tags=["admin"])
async def list_users(admin: Admin, db: Db) -> Response:
    """Every account (disabled ones too, with ``disabled_at``): what ``/disable`` needs."""
    del admin
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, username, display_name, role, district, worker_id, created_at,"
            " disabled_at FROM users ORDER BY id LIMIT 10000"
        )
        return json_response(await cur.fetchall())


@router.get("/api-keys", tags=["admin"])
async def list_api_keys(admin: Admin, db: Db) -> Response:
    """Every machine client's key by its prefix (never the key), with its scopes and
    whether it is revoked: what ``/revoke`` needs."""
    del admin
    async with db.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, prefix, name, scopes, district, created_at, revoked_at FROM api_keys"
            " ORDER BY id LIMIT 10000"
        )
        return json_response(await cur.fetchall())


@router.post("/users/{user_id}/disable", status_code=204, tags=["admin"],
             responses={404: {"description": "no such user"},
                        409: {"description": "your own account"}})  # fmt: skip
async def disable(user_id: RowKey, admin: Admin, ctx: Ctx, db: Tx) -> None:
    """Disable an account (someone who left the centre, a family member who should no
    longer see the resident): its sessions are revoked, its tokens refused, and it
    cannot sign in again. Its past acts stay in the audit log under its id. Before
    2026-12-04 an account could not be disabled at all."""
    if user_id == admin.user_id:
        raise Problem(409, "you cannot disable your own account")
    done = await disable_user(db, user_id)
    if done is None:
        raise not_found(f"user {user_id}")
    ctx.forget_actor(f"user:{user_id}")
    if done:
        ctx.audit.record(admin, "disable_user", f"user:{user_id}", at=utcnow())


@router.post("/api-keys/{key_id}/revoke", status_code=204, tags=["admin"],
             responses={404: {"description": "no such key"}})  # fmt: skip
async def revoke_key(key_id: RowKey, admin: Admin, ctx: Ctx, db: Tx) -> None:
    """Revoke a machine client's API key (leaked, or the client retired): it is refused
    from then on. Before 2026-12-04 a key could not be revoked."""
    done = await revoke_api_key(db, key_id)
    if done is None:
        raise not_found(f"API key {key_id}")
    ctx.forget_actor(f"key:{key_id}")
    if done:
        ctx.audit.record(admin, "revoke_api_key", f"key:{key_id}", at=utcnow())
