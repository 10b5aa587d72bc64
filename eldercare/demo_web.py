"""The demo's web side: the API and pages on loopback, and one user per role.

Each run makes fresh random passwords (printed once) and a random token secret,
so the demo never runs on a known secret; accounts from an earlier run of the
same demo database get the new passwords. When the demo stops, its accounts are
disabled (a database given with ELDERCARE_DATABASE_URL outlives the demo; before
2026-12-04 the accounts stayed there with working passwords).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import psycopg
from pydantic import SecretStr

from api.app import create_app
from api.cli import serving
from api.identity import IdentityError, create_user
from api.principal import Role
from api.security import hash_password
from eldercare.settings import Settings


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    password: str
    role: str
    page: str


async def demo_users(url: str, *, worker_id: str | None) -> list[DemoUser]:
    """admin, an operator of the first resident's district, that resident's family
    and (with ``worker_id``) a service worker; created or given new passwords."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT resident_id, district FROM residents ORDER BY resident_id LIMIT 1"
        )
        first = await cur.fetchone()
        if first is None:
            raise RuntimeError("the demo registers residents before its users")
        resident_id, district = int(first[0]), str(first[1])
        wanted: list[tuple[str, Role, dict[str, Any], str]] = [
            ("demo-admin", Role.ADMIN, {}, "console"),
            ("demo-operator", Role.OPERATOR, {"district": district}, "console"),
            ("demo-family", Role.FAMILY, {"resident_ids": [resident_id]}, "family"),
        ]
        if worker_id is not None:
            wanted.append(("demo-worker", Role.WORKER, {"worker_id": worker_id}, "worker"))
        users = []
        for username, role, extra, page in wanted:
            password = secrets.token_urlsafe(12)
            try:
                await create_user(conn, username=username, password=password, role=role, **extra)
            except IdentityError:  # an earlier demo run: same account, new password
                await conn.execute(
                    "UPDATE users SET password_hash = %s, worker_id = COALESCE(%s, worker_id),"
                    " disabled_at = NULL WHERE username = %s",
                    (hash_password(password), extra.get("worker_id"), username),
                )
            users.append(DemoUser(username, password, role.value, page))
    return users


async def disable_demo_users(url: str, usernames: list[str]) -> None:
    """Disable the demo's accounts: no sign-in with the printed passwords after the demo."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE users SET disabled_at = now() WHERE username = ANY(%s) AND disabled_at IS NULL",
            (usernames,),
        )


@contextlib.asynccontextmanager
async def served_api(settings: Settings, port: int) -> AsyncIterator[str]:
    """``eldercare api`` in this process on 127.0.0.1:``port``; yields its base URL.

    The demo's own Ctrl-C handling stops everything; uvicorn does not take the signals.
    """
    live = settings.model_copy(update={"api_secret_key": SecretStr(secrets.token_hex(32))})
    async with serving(create_app(live), port=port) as base:
        yield base


async def start_web(
    settings: Settings, *, port: int, worker_id: str | None
) -> contextlib.AsyncExitStack:
    """The API and pages for the demo (nothing with ``port`` 0); close the stack to stop."""
    web = contextlib.AsyncExitStack()
    if not port:
        return web
    url = settings.require_database_url()
    users = await demo_users(url, worker_id=worker_id)
    # pushed first, so it runs last: after the API has stopped
    web.push_async_callback(disable_demo_users, url, [u.username for u in users])
    base = await web.enter_async_context(served_api(settings, port))
    print(f"web: {base}/console/ (operators), {base}/family/, {base}/worker/;"
          f" API {base}/docs. Sign in (passwords of this run only; the accounts are"
          " disabled when the demo stops):", flush=True)  # fmt: skip
    for u in users:
        print(f"  {u.role:<9} {u.username:<14} {u.password}  -> {base}/{u.page}/", flush=True)
    return web
