"""The API across a database restart: every request after it is answered.

A restart closes every pooled connection from the server's side. Before, the pool
handed each of them to the next requests, which failed with a 500 (four of fifteen
here); the pool's check (eldercare.db.PoolCheck) now replaces them first.
"""

from __future__ import annotations

import asyncio

import httpx

from api.app import create_app
from eldercare.migrate import migrate
from tests.api_support import api_settings, bearer, password, seed
from tests.conftest import PrivatePostgres


async def test_requests_after_a_database_restart_are_answered(
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.admin_url
    migrate(url)
    await seed(url)
    app = create_app(api_settings(url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # 500s, not raises
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            form = {"username": "operator", "password": password("operator")}
            token = (await client.post("/auth/token", data=form)).json()["access_token"]

            async def alerts() -> int:
                return (await client.get("/alerts", headers=bearer(token))).status_code

            # several requests at once: the pool holds several connections
            assert await asyncio.gather(*(alerts() for _ in range(12))) == [200] * 12
            await asyncio.to_thread(private_postgres.stop)
            await asyncio.to_thread(private_postgres.start)
            assert [await alerts() for _ in range(15)] == [200] * 15
            assert await asyncio.gather(*(alerts() for _ in range(12))) == [200] * 12
