"""The FastAPI application: lifespan (pool, audit writer, live hub), routes, static pages.

``create_app(settings)`` builds everything from the given settings (never at
import time). The default development token secret is refused unless the
environment is ``test`` or the caller is the demo (``allow_dev_secret``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import msgspec
import psycopg
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from psycopg.rows import TupleRow
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from api import openapi, problems
from api.audit import AuditWriter
from api.deps import ApiContext
from api.fastpath import StatusFastPath
from api.live import LiveHub
from api.routes import (
    absence,
    alerts,
    audit,
    auth,
    live,
    orders,
    residents,
    status,
    subscriptions,
    workers,
    wristbands,
)
from api.security import LoginLimiter
from eldercare.db import checked_pool
from eldercare.logs import get_logger
from eldercare.settings import Settings

log = get_logger(__name__)
REPO_WEB = Path(__file__).resolve().parents[1] / "web"
PAGES = ("console", "family", "worker", "lib")  # lib: the pages' shared modules


class InsecureSecretError(RuntimeError):
    """The development token secret outside the demo and tests."""


def create_app(settings: Settings, *, allow_dev_secret: bool = False) -> FastAPI:
    if settings.api_secret_is_default() and not (
        allow_dev_secret or settings.environment == "test"
    ):
        raise InsecureSecretError(
            "ELDERCARE_API_SECRET_KEY is the development default; set a secret of your own"
        )
    secret = settings.api_secret_key.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_api_pool(
            settings.require_database_url(),
            max_size=settings.db_pool_max,
            min_size=min(4, settings.db_pool_max),
            name="eldercare-api",
        )
        try:
            async with (
                AuditWriter(pool) as audit_writer,
                LiveHub(
                    pool,
                    mqtt_url=settings.mqtt_url,
                    audit=audit_writer,
                    family_location_decimals=settings.api_family_location_decimals,
                ) as hub,
            ):
                app.state.ctx = ApiContext(
                    settings=settings,
                    pool=pool,
                    audit=audit_writer,
                    secret=secret,
                    limiter=LoginLimiter(
                        attempts=settings.api_login_attempts,
                        window=timedelta(seconds=settings.api_login_window_s),
                    ),
                    hub=hub,
                )
                log.info("api_started", web=str(web_dir(settings)))
                yield
        finally:
            await pool.close()

    app = FastAPI(
        title="eldercare API",
        version="1.0.0",
        description="Operators, service workers and families. Errors are RFC 9457 "
        "problem+json; lists are {items, next_cursor}. Anything outside your scope is 404.",
        lifespan=lifespan,
    )
    app.add_middleware(StatusFastPath)
    problems.install(app)
    openapi.install(app)
    for module in (auth, residents, absence, status, wristbands, alerts, orders, subscriptions,
                   workers, audit, live):  # fmt: skip
        app.include_router(module.router)
    _mount_pages(app, web_dir(settings))
    return app


async def open_api_pool(url: str, *, max_size: int, min_size: int, name: str
                        ) -> AsyncConnectionPool:  # fmt: skip
    """Like :func:`eldercare.db.open_pool`, but connections are in autocommit (reads take
    one round trip) and are put back in autocommit whatever a request left them in."""

    async def reset(conn: psycopg.AsyncConnection[TupleRow]) -> None:
        await conn.set_autocommit(True)

    async def configure(conn: psycopg.AsyncConnection[TupleRow]) -> None:
        set_json_loads(msgspec.json.decode, conn)  # json columns: several times faster

    # checked: a connection a database restart closed is replaced, not used
    pool = checked_pool(
        url, min_size=min_size, max_size=max_size, max_waiting=max_size * 50, timeout=10.0,
        name=name, kwargs={"autocommit": True}, reset=reset, configure=configure,
    )  # fmt: skip
    await pool.open(wait=False)
    return pool


def web_dir(settings: Settings) -> Path:
    return Path(settings.api_web_dir) if settings.api_web_dir else REPO_WEB


def _mount_pages(app: FastAPI, web: Path) -> None:
    mounted = []
    for page in PAGES:
        if (web / page).is_dir():
            app.mount(f"/{page}", StaticFiles(directory=web / page, html=True), name=page)
            mounted.append(page)
    if mounted:

        @app.get("/", include_in_schema=False)
        async def root() -> RedirectResponse:
            return RedirectResponse(f"/{mounted[0]}/")
