"""A 2xx answer means the write is committed: a client acting on it at once sees it.

Under a real server (uvicorn), not the in-process transport, because the race is
between the response leaving and the transaction committing.
"""

from __future__ import annotations

import httpx

from tests.api_support import api_settings, password, seed, served


async def test_a_fresh_login_is_usable_at_once(db_url: str) -> None:
    await seed(db_url)
    async with (
        served(api_settings(db_url)) as (_app, base),
        httpx.AsyncClient(base_url=base) as client,
    ):
        statuses = []
        for _ in range(30):
            r = await client.post(
                "/auth/token", data={"username": "operator", "password": password("operator")}
            )
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            me = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
            statuses.append(me.status_code)
    assert statuses == [200] * 30
