"""`PUT /workers/{worker_id}`: the centre registers a service worker and their shifts
through the API, as `eldercare workers add` does from a file. Before 2026-12-04 the
API could list workers and set their status, but registering one took the CLI or SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg

from dispatch import service
from dispatch.roster import add_shift
from dispatch.store import offer
from tests.api_support import DISTRICT_A, DISTRICT_B, api_client, api_settings, bearer, login, seed
from tests.integration.test_api_orders import add_worker, booking
from tests.support import rows

CST = timezone(timedelta(hours=8))
SHIFTS = [
    {"starts_at": "2026-12-07T08:00:00+08:00", "ends_at": "2026-12-07T12:00:00+08:00"},
    {"starts_at": "2026-12-07T14:00:00+08:00", "ends_at": "2026-12-07T18:00:00+08:00"},
]


def body(**changes: Any) -> dict[str, Any]:
    return {"name": "李梅", "district": DISTRICT_A, "skills": ["caregiver", "bathing"],
            "home_lat": 32.39, "home_lon": 120.56, "shifts": SHIFTS, **changes}  # fmt: skip


async def shifts(db_url: str, worker_id: str) -> list[tuple[Any, ...]]:
    return await rows(db_url, "SELECT starts_at, ends_at FROM worker_shifts WHERE worker_id = %s"
                      " ORDER BY starts_at", worker_id)  # fmt: skip


async def test_the_centre_registers_a_worker_and_their_shifts(db_url: str) -> None:
    await seed(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.put("/workers/W001", json=body(), headers=op)
        assert r.status_code == 200, r.text
        got = r.json()
        assert (got["shifts_added"], got["shifts_kept"]) == (2, 0)
        assert got["worker"]["worker_id"] == "W001"
        assert sorted(got["worker"]["skills"]) == ["bathing", "caregiver"]
        assert len(await shifts(db_url, "W001")) == 2
        # sent again: nothing new; a changed capacity is updated
        r = await client.put("/workers/W001", json=body(max_orders_per_day=6), headers=op)
        assert (r.json()["shifts_added"], r.json()["shifts_kept"]) == (0, 2)
        assert r.json()["worker"]["max_orders_per_day"] == 6
        seen = await client.get("/workers/W001", headers=op)
        assert (seen.status_code, seen.json()["name"]) == (200, "李梅")
    audit = await rows(db_url, "SELECT actor, resource FROM audit_log WHERE action = 'put_worker'")
    assert [r[1] for r in audit] == ["worker:W001", "worker:W001"]


async def test_a_wrong_request_writes_nothing(db_url: str) -> None:
    await seed(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        assert (await client.put("/workers/W001", json=body(), headers=op)).status_code == 200
        overlap = [{"starts_at": "2026-12-07T11:00:00+08:00",
                    "ends_at": "2026-12-07T13:00:00+08:00"}]  # fmt: skip
        r = await client.put("/workers/W001", json=body(name="改名", shifts=overlap), headers=op)
        assert r.status_code == 409, r.text
        assert "overlaps one on record" in r.json()["detail"]
        r = await client.put("/workers/W001", json=body(name="改名", shifts=[*SHIFTS, *overlap]),
                             headers=op)  # fmt: skip
        assert r.status_code == 422, r.text
        assert "overlap" in r.json()["detail"]
        r = await client.put("/workers/W001", json=body(skills=["juggling"]), headers=op)
        assert r.status_code == 422
        assert "juggling" in r.text
        r = await client.put("/workers/W 1", json=body(), headers=op)
        assert r.status_code == 422
    assert await rows(db_url, "SELECT name FROM service_workers WHERE worker_id = 'W001'") == [
        ("李梅",)
    ]
    assert len(await shifts(db_url, "W001")) == 2


async def test_a_district_registers_only_its_own_workers(db_url: str) -> None:
    await seed(db_url)
    await add_worker(db_url)  # worker "1", district A
    async with api_client(api_settings(db_url)) as (_app, client):
        op_b = bearer((await login(client, "operator_b"))["access_token"])
        r = await client.put("/workers/W002", json=body(), headers=op_b)  # into district A
        assert r.status_code == 403
        r = await client.put("/workers/1", json=body(district=DISTRICT_B), headers=op_b)
        assert r.status_code == 403  # taking district A's worker over
        worker = bearer((await login(client, "worker"))["access_token"])
        assert (await client.put("/workers/1", json=body(), headers=worker)).status_code == 403
        admin = bearer((await login(client, "admin"))["access_token"])
        r = await client.put("/workers/W003", json=body(district=DISTRICT_B), headers=admin)
        assert r.status_code == 200
    got = await rows(db_url, "SELECT worker_id, district FROM service_workers ORDER BY 1")
    assert got == [("1", DISTRICT_A), ("W003", DISTRICT_B)]


async def test_the_centre_reads_and_removes_a_workers_shifts(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)  # worker "1", the seed's worker user, on shift now
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        assert (await client.put("/workers/W001", json=body(), headers=op)).status_code == 200
        r = await client.get("/workers/W001/shifts?start=2026-12-07T00:00:00Z", headers=op)
        assert r.status_code == 200, r.text
        assert [(x["starts_at"][:16], x["ends_at"][:16]) for x in r.json()] == [
            ("2026-12-07T00:00", "2026-12-07T04:00"),
            ("2026-12-07T06:00", "2026-12-07T10:00"),
        ]  # in UTC: 08:00-12:00 and 14:00-18:00 at +08:00
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            order, _ = await service.book_order(
                conn, resident_id=s.residents["a1"], service_type="cleaning", actor="operator:1",
                window_start=datetime(2026, 12, 7, 9, tzinfo=CST),
                window_end=datetime(2026, 12, 7, 11, tzinfo=CST), now=datetime.now(UTC),
            )  # fmt: skip
            await offer(conn, order.id, "W001", actor="t", now=datetime.now(UTC),
                        booked_from=datetime(2026, 12, 7, 9, tzinfo=CST),
                        booked_until=datetime(2026, 12, 7, 10, tzinfo=CST),
                        expires_at=None)  # fmt: skip

        async def delete(worker: str, at: str, headers: dict[str, str]) -> httpx.Response:
            return await client.delete(f"/workers/{worker}/shifts", params={"starts_at": at},
                                       headers=headers)  # fmt: skip

        r = await delete("W001", "2026-12-07T08:00:00+08:00", op)  # holds the visit
        assert r.status_code == 409, r.text
        assert f"order {order.id}" in r.json()["detail"]
        assert (await delete("W001", "2026-12-07T14:00:00+08:00", op)).status_code == 204
        assert (await delete("W001", "2026-12-07T14:00:00+08:00", op)).status_code == 404
        op_b = bearer((await login(client, "operator_b"))["access_token"])
        assert (await delete("W001", "2026-12-07T08:00:00+08:00", op_b)).status_code == 404
        worker = bearer((await login(client, "worker"))["access_token"])
        assert (await client.get("/workers/1/shifts", headers=worker)).status_code == 200
        assert (await delete("1", "2026-12-07T08:00:00+08:00", worker)).status_code == 403
        r = await client.get("/workers/W001/shifts?start=2026-12-07T00:00:00Z", headers=op)
        assert [x["starts_at"][:16] for x in r.json()] == ["2026-12-07T00:00"]
    audit = await rows(db_url, "SELECT resource FROM audit_log WHERE action = 'delete_shift'")
    assert audit == [("worker:W001",)]


async def test_a_worker_who_left_is_taken_off_the_roster(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)  # worker "1", on shift now
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await add_shift(conn, "1", tomorrow, tomorrow + timedelta(hours=4))
        await conn.commit()
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        order = (await client.post("/orders", json=booking(s), headers=op)).json()["id"]
        r = await client.post(f"/orders/{order}/assign", json={"worker_id": "1"}, headers=op)
        assert r.status_code == 200, r.text
        r = await client.post("/workers/1/retire", headers=op)
        assert r.status_code == 409  # holds the visit
        assert f"order {order}" in r.json()["detail"]
        assert (await client.post(f"/orders/{order}/cancel", headers=op)).status_code == 200
        assert (await client.post("/workers/1/retire", headers=op)).status_code == 204
        listed = (await client.get("/workers", headers=op)).json()
        assert "1" not in [w["worker_id"] for w in listed]
        record = (await client.get("/workers/1", headers=op)).json()
        assert (record["active"], record["status"]) == (False, "off_shift")
        other = (await client.post("/orders", json=booking(s, hours=5), headers=op)).json()["id"]
        r = await client.post(f"/orders/{other}/assign", json={"worker_id": "1"}, headers=op)
        assert r.status_code == 404  # no longer anyone to send
        shifts = (await client.get("/workers/1/shifts", headers=op)).json()
        # the shift under way stays on record; tomorrow's is gone
        assert [datetime.fromisoformat(x["starts_at"]) < tomorrow for x in shifts] == [True]
        back = await client.put("/workers/1", json=body(name="Chen Jing"), headers=op)
        assert back.status_code == 200  # registered again: active
        assert back.json()["worker"]["active"] is True
    audit = await rows(db_url, "SELECT resource FROM audit_log WHERE action = 'retire_worker'")
    assert audit == [("worker:1",)]
