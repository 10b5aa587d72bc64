"""`eldercare api` (serve) and `eldercare user add` / `eldercare apikey add`."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import time
from collections.abc import AsyncIterator, Iterator

import psycopg
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.identity import IdentityError, create_api_key, create_user, disable_user
from api.principal import Role
from eldercare.migrate import migrate
from eldercare.settings import Settings


def serve(settings: Settings, *, host: str | None, port: int | None) -> int:
    migrate(settings.require_database_url())
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.api_host, port=port or settings.api_port,
                log_level=settings.log_level.lower(), access_log=False)  # fmt: skip
    return 0


class _InLoopServer(uvicorn.Server):
    """uvicorn inside someone else's event loop: the host program handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI,
    *,
    port: int,
    host: str = "127.0.0.1",
    start_timeout_s: float = 20.0,
    stop_timeout_s: float | None = None,
) -> AsyncIterator[str]:
    """``app`` under uvicorn in the running event loop (the demo, tests); yields its URL."""
    server = _InLoopServer(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve(), name="api")
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if task.done():
            task.result()  # the port is taken, say: the error, not a hang
            raise RuntimeError("the API stopped while starting")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        await asyncio.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, stop_timeout_s)


def _password(env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"the environment variable {env} is empty")
        return value
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the passwords differ")
    return first


def add_user(settings: Settings, *, username: str, role: str, display_name: str,
             district: str | None, worker_id: str | None, residents: list[int],
             password_env: str | None) -> int:  # fmt: skip
    password = _password(password_env)

    async def run() -> int:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            user_id = await create_user(
                conn, username=username, password=password, role=Role(role),
                display_name=display_name, district=district, worker_id=worker_id,
                resident_ids=residents,
            )  # fmt: skip
            await conn.commit()
        return user_id

    try:
        user_id = asyncio.run(run())
    except IdentityError as exc:
        raise ValueError(str(exc)) from exc
    print(json.dumps({"id": user_id, "username": username, "role": role}))
    return 0


def add_api_key(settings: Settings, *, name: str, scopes: list[str],
                district: str | None) -> int:  # fmt: skip
    async def run() -> tuple[int, str]:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            created = await create_api_key(conn, name=name, scopes=scopes, district=district)
            await conn.commit()
        return created

    try:
        key_id, key = asyncio.run(run())
    except IdentityError as exc:
        raise ValueError(str(exc)) from exc
    print(json.dumps({"id": key_id, "key": key, "note": "shown once; store it now"}))
    return 0


def disable_user_named(settings: Settings, *, username: str) -> int:
    """`eldercare user disable USERNAME`: as ``POST /users/{id}/disable`` (sessions
    revoked; API processes refuse its tokens within their principal cache time)."""

    async def run() -> bool | None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            cur = await conn.execute("SELECT id FROM users WHERE username = %s", (username,))
            row = await cur.fetchone()
            done = None if row is None else await disable_user(conn, int(row[0]))
            await conn.commit()
        return done

    done = asyncio.run(run())
    if done is None:
        raise ValueError(f"no user {username!r}")
    print(json.dumps({"username": username, "disabled": True, "already": not done}))
    return 0
