"""Listing and opening orders through the API: ``GET /orders?date=`` means the city's
local day, and an API key without a district opens every order it lists."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg

from api.identity import create_api_key
from dispatch.model import read_catalogue_yaml
from tests.api_support import DISTRICT_A, DISTRICT_B, Seed, api_client, api_settings, bearer, seed
from tests.integration.test_api_orders import add_worker, tokens


async def book(client: httpx.AsyncClient, s: Seed, start: datetime) -> int:
    """A 90-minute cleaning visit at a1 from ``start``, booked by a1's family; its id."""
    family = (await tokens(client, "family"))["family"]
    body = {
        "resident_id": s.residents["a1"],
        "service_type": "cleaning",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=90)).isoformat(),
    }
    r = await client.post("/orders", json=body, headers=family)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def listed_on(client: httpx.AsyncClient, day: date) -> list[int]:
    operator = (await tokens(client, "operator"))["operator"]
    r = await client.get("/orders", params={"date": day.isoformat()}, headers=operator)
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()["items"]]


async def test_a_date_is_the_local_day(db_url: str) -> None:
    """Found by review: ``date`` was taken as a UTC day, so a visit at 06:00 in Shanghai
    (22:00 UTC the day before) was listed under the day before. Day planning counts
    days in the catalogue's time zone (Asia/Shanghai); so does the list now."""
    s = await seed(db_url)
    await add_worker(db_url)
    zone = ZoneInfo("Asia/Shanghai")
    tomorrow = (datetime.now(zone) + timedelta(days=1)).date()
    async with api_client(api_settings(db_url)) as (_app, client):
        early = await book(
            client, s, datetime.combine(tomorrow, datetime.min.time(), zone) + timedelta(hours=6)
        )
        assert await listed_on(client, tomorrow) == [early]
        assert await listed_on(client, tomorrow - timedelta(days=1)) == []
        assert await listed_on(client, date.max) == []  # the day after is no overflow
        assert await listed_on(client, date.min) == []


async def test_a_date_is_the_local_day_of_the_configured_catalogue(
    db_url: str, tmp_path: Path
) -> None:
    """The zone is the catalogue's (``ELDERCARE_DISPATCH_CATALOGUE``), as in day planning:
    21:00 in New York is the next day in UTC and in Shanghai, the same day in New York."""
    catalogue = read_catalogue_yaml()
    catalogue["timezone"] = "America/New_York"
    path = tmp_path / "catalogue.yaml"
    path.write_text(json.dumps(catalogue))  # JSON is YAML
    s = await seed(db_url)
    await add_worker(db_url)
    zone = ZoneInfo("America/New_York")
    day = (datetime.now(zone) + timedelta(days=2)).date()
    settings = api_settings(db_url, dispatch_catalogue=str(path))
    async with api_client(settings) as (_app, client):
        late = await book(
            client, s, datetime.combine(day, datetime.min.time(), zone) + timedelta(hours=21)
        )
        assert await listed_on(client, day) == [late]
        assert await listed_on(client, day + timedelta(days=1)) == []


async def test_an_api_key_without_a_district_opens_what_it_lists(db_url: str) -> None:
    """Found by review: a key bound to no district (city-wide: "its district or all",
    docs/api.md) listed every order, but opening or cancelling one answered 404."""
    s = await seed(db_url)
    await add_worker(db_url)
    scopes = ["orders:read", "orders:write"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        _, city = await create_api_key(conn, name="city", scopes=scopes)
        _, in_a = await create_api_key(conn, name="a", scopes=scopes, district=DISTRICT_A)
        _, in_b = await create_api_key(conn, name="b", scopes=scopes, district=DISTRICT_B)
        await conn.commit()
    async with api_client(api_settings(db_url)) as (_app, client):
        order_id = await book(client, s, datetime.now(UTC) + timedelta(hours=2))
        listed = (await client.get("/orders", headers=bearer(city))).json()["items"]
        assert [o["id"] for o in listed] == [order_id]
        for key, code in ((city, 200), (in_a, 200), (in_b, 404)):
            assert (
                await client.get(f"/orders/{order_id}", headers=bearer(key))
            ).status_code == code
            assert (await client.get("/workers/1", headers=bearer(key))).status_code == code
        r = await client.post(f"/orders/{order_id}/cancel", headers=bearer(city))
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled"
