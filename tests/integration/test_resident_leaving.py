"""`POST /residents/{id}/leave`: a resident leaves the service (care home, moved, died).
Refused while an alert is open or a worker is on the way; then the band goes back to
stock, the visits not begun are cancelled, nothing more is booked (by the centre, the family
or the recurring rules) and the alert engine stops watching. Before 2026-12-04 a
resident could not be marked as gone, and recurring visits went on being booked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from alerts.profiles import load_profile
from dispatch import service
from dispatch.day import make_recurring
from dispatch.recurring import load_recurring
from eldercare.registry import provision_wristbands
from tests.api_support import Seed, api_client, api_settings, bearer, login, seed
from tests.integration.test_api_orders import add_worker, booking
from tests.support import rows


async def seed_with_band(db_url: str, who: str) -> tuple[Seed, int]:
    """The API seed, worker "1", and a band WB-<WHO> on resident ``who`` (a1, a2)."""
    s = await seed(db_url)
    await add_worker(db_url)
    rid = s.residents[who]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await provision_wristbands(conn, [(f"WB-{who.upper()}", rid)])
        await conn.commit()
    return s, rid


async def test_a_resident_leaves_the_service(db_url: str) -> None:
    s, a1 = await seed_with_band(db_url, "a1")
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        leave = {"reason": "moved into a care home"}
        r = await client.post(f"/residents/{a1}/leave", json=leave, headers=op)
        assert r.status_code == 409, r.text
        assert str(s.alerts["a1"]) in r.json()["detail"]  # the open SOS, named
        r = await client.post(f"/alerts/{s.alerts['a1']}/resolve", json={"outcome": "false"},
                              headers=op)  # fmt: skip
        assert r.status_code == 200, r.text
        waiting = (await client.post("/orders", json=booking(s), headers=op)).json()["id"]
        offered = (await client.post("/orders", json=booking(s, hours=6), headers=op)).json()["id"]
        r = await client.post(f"/orders/{offered}/assign", json={"worker_id": "1"}, headers=op)
        assert r.status_code == 200, r.text

        r = await client.post(f"/residents/{a1}/leave", json=leave, headers=op)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["left_reason"] == "moved into a care home"
        assert got["left_at"] is not None
        assert (got["unpaired_bands"], got["cancelled_orders"]) == (["WB-A1"], [waiting, offered])
        assert got["wristbands"] == []  # back in the admin's stock, for someone else
        again = await client.post(f"/residents/{a1}/leave", json=leave, headers=op)
        assert again.status_code == 409
        assert "left the service" in again.json()["detail"]
        family = bearer((await login(client, "family"))["access_token"])
        r = await client.post("/orders", json=booking(s), headers=family)
        assert r.status_code == 422
        assert "left the service" in r.json()["detail"]
        assert (await client.get(f"/residents/{a1}", headers=family)).status_code == 200
        listed = (await client.get("/residents", headers=op)).json()["items"]
        assert a1 not in [x["id"] for x in listed]
        listed = (await client.get("/residents?include_left=true", headers=op)).json()["items"]
        assert [x["left_at"] is not None for x in listed if x["id"] == a1] == [True]
    states = await rows(db_url, "SELECT id, state FROM work_orders WHERE resident_id = %s"
                        " ORDER BY id", a1)  # fmt: skip
    assert states == [(waiting, "cancelled"), (offered, "cancelled")]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        assert await load_profile(conn, a1) is None  # the engine stops watching
        now = datetime.now(UTC)
        monday = (now + timedelta(days=7 - now.weekday())).date()  # the welfare visit's day
        await make_recurring(conn, load_recurring(), monday, now=now)
    booked = await rows(db_url, "SELECT count(*) FROM work_orders WHERE resident_id = %s"
                        " AND state = 'created'", a1)  # fmt: skip
    assert booked == [(0,)]
    assert await rows(db_url, "SELECT resident_id, revoked_at FROM wristbands") == [(None, None)]


async def test_a_resident_marked_as_left_by_mistake_comes_back(db_url: str) -> None:
    s, a2 = await seed_with_band(db_url, "a2")
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.post(f"/residents/{a2}/return", headers=op)
        assert r.status_code == 409  # has not left
        r = await client.post(f"/residents/{a2}/leave", json={"reason": "wrong one"}, headers=op)
        assert r.status_code == 200, r.text
        r = await client.post(f"/residents/{a2}/return", headers=op)
        assert r.status_code == 200, r.text
        assert (r.json()["left_at"], r.json()["left_reason"]) == (None, None)
        admin = bearer((await login(client, "admin"))["access_token"])  # the stock is theirs
        r = await client.post("/wristbands/WB-A2/pair", json={"resident_id": a2}, headers=admin)
        assert r.status_code == 200, r.text
        order = {**booking(s), "resident_id": a2}
        assert (await client.post("/orders", json=order, headers=op)).status_code == 201
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        profile = await load_profile(conn, a2)
    assert profile is not None
    assert profile.bands == frozenset({"WB-A2"})
    audit = await rows(db_url, "SELECT action FROM audit_log WHERE resource = %s ORDER BY id",
                       f"resident:{a2}")  # fmt: skip
    assert [a for (a,) in audit if a.startswith("resident_")] == ["resident_left",
                                                                 "resident_returned"]  # fmt: skip


async def test_not_while_a_worker_is_on_the_way(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)
    a2 = s.residents["a2"]
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order, _ = await service.book_order(
            conn, resident_id=a2, service_type="cleaning", actor="operator:1",
            window_start=datetime.now(UTC) + timedelta(hours=1),
            window_end=datetime.now(UTC) + timedelta(hours=3),
        )  # fmt: skip
        await service.assign_order(conn, order.id, "1", actor="operator:1")
        await service.accept(conn, order.id, worker_id="1", actor="worker:1")
        await service.en_route(conn, order.id, worker_id="1", actor="worker:1")
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.post(f"/residents/{a2}/leave", json={"reason": "died"}, headers=op)
        assert r.status_code == 409
        assert f"order {order.id}" in r.json()["detail"]
    assert await rows(db_url, "SELECT left_at FROM residents WHERE resident_id = %s", a2) == [
        (None,)
    ]
