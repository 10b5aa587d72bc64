"""Orders, workers, alert dispatch and reports through the API on dispatch's service
layer: who may book, see, assign and work an order; a worker's scope follows their
orders; the family view shows the services and who is coming to an alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from dispatch import service
from dispatch.model import Mode, Point, WorkerStatus, load_catalogue
from dispatch.roster import (
    NewWorker,
    add_shift,
    add_workers,
    set_location,
    set_status,
    sync_catalogue,
)
from tests.api_support import (
    DISTRICT_A,
    DISTRICT_B,
    Seed,
    api_client,
    api_settings,
    bearer,
    login,
    seed,
)
from tests.support import scalar

NEAR_A1 = Point(32.3830, 120.5650)  # ~250 m from a1's home in the seed


async def add_worker(db_url: str) -> None:
    """Worker "1" (the seed's worker user), on shift and available near a1."""
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await sync_catalogue(conn, load_catalogue())
        await add_workers(
            conn,
            [
                NewWorker(
                    "1",
                    "Chen Jing",
                    DISTRICT_A,
                    frozenset({"caregiver", "cleaning"}),
                    NEAR_A1,
                    mode=Mode.EBIKE,
                )
            ],
        )
        await add_shift(conn, "1", now - timedelta(hours=1), now + timedelta(hours=8))
        await set_status(conn, "1", WorkerStatus.AVAILABLE, now=now)
        await set_location(conn, "1", NEAR_A1, now=now)
        await conn.commit()


async def tokens(client: httpx.AsyncClient, *names: str) -> dict[str, dict[str, str]]:
    return {n: bearer((await login(client, n))["access_token"]) for n in names}


def booking(s: Seed, *, hours: int = 2) -> dict[str, object]:
    start = datetime.now(UTC) + timedelta(hours=hours)
    return {
        "resident_id": s.residents["a1"],
        "service_type": "cleaning",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=3)).isoformat(),
        "notes": "the kitchen",
    }


async def test_book_assign_and_work_an_order(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(client, "family", "family_b", "operator", "operator_b", "worker", "admin")
        types = (await client.get("/service-types", headers=t["family"])).json()
        assert "cleaning" in {x["code"] for x in types}

        # a family books for their parent, idempotently; not for someone else's
        key = {"Idempotency-Key": "clean-1"}
        body = booking(s)
        first = await client.post("/orders", json=body, headers={**t["family"], **key})
        assert first.status_code == 201, first.text
        again = await client.post("/orders", json=body, headers={**t["family"], **key})
        assert again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        changed = await client.post(
            "/orders", json=booking(s, hours=5), headers={**t["family"], **key}
        )
        assert changed.status_code == 422
        other = {**booking(s), "resident_id": s.residents["b1"]}
        assert (await client.post("/orders", json=other, headers=t["family"])).status_code == 404
        assert (
            await client.post("/orders", json=booking(s), headers=t["worker"])
        ).status_code == 403
        order_id = first.json()["id"]

        # who sees it
        for name, code in (
            ("family", 200),
            ("operator", 200),
            ("admin", 200),
            ("family_b", 404),
            ("operator_b", 404),
            ("worker", 404),
        ):
            r = await client.get(f"/orders/{order_id}", headers=t[name])
            assert r.status_code == code, (name, r.text)
        # before the order, the worker sees none of a1's data
        status = f"/residents/{s.residents['a1']}/status"
        assert (await client.get(status, headers=t["worker"])).status_code == 404

        # the centre overrides the assignment; the worker answers and does the job
        r = await client.post(
            f"/orders/{order_id}/assign", json={"worker_id": "1"}, headers=t["operator_b"]
        )
        assert r.status_code == 404
        r = await client.post(
            f"/orders/{order_id}/assign", json={"worker_id": "1"}, headers=t["operator"]
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "offered"
        mine = (await client.get("/orders", headers=t["worker"])).json()["items"]
        assert [o["id"] for o in mine] == [order_id]
        assert (await client.get(status, headers=t["worker"])).status_code == 200
        assert (
            await client.get(f"/residents/{s.residents['a2']}/status", headers=t["worker"])
        ).status_code == 404
        assert (
            await client.post(f"/orders/{order_id}/accept", headers=t["operator"])
        ).status_code == 403
        for step, body in (
            ("accept", None),
            ("en-route", None),
            ("check-in", {"lat": 32.3812, "lon": 120.5634}),
            ("check-out", {"notes": "done", "outcome": "done"}),
        ):
            r = await client.post(f"/orders/{order_id}/{step}", json=body, headers=t["worker"])
            assert r.status_code == 200, (step, r.text)
        assert r.json()["state"] == "completed"
        assert (
            await client.post(f"/orders/{order_id}/accept", headers=t["worker"])
        ).status_code == 409
        detail = (await client.get(f"/orders/{order_id}", headers=t["family"])).json()
        assert [e["to_state"] for e in detail["events"]][-1] == "completed"
        # the job done, the worker's window onto a1 closes again
        assert (await client.get(status, headers=t["worker"])).status_code == 404
        past = (await client.get(status, headers=t["family"])).json()["services"]["past"]
        assert [p["id"] for p in past] == [order_id]
        assert past[0]["worker_name"] == "Chen Jing"


async def test_alert_candidates_dispatch_and_progress(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)
    alert = s.alerts["a1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(client, "family", "operator", "operator_b", "worker")
        r = await client.get(f"/alerts/{alert}/candidates", headers=t["operator"])
        assert r.status_code == 200, r.text
        assert [c["worker_id"] for c in r.json()] == ["1"]
        assert (
            await client.get(f"/alerts/{alert}/candidates", headers=t["operator_b"])
        ).status_code == 404
        assert (
            await client.get(f"/alerts/{alert}/candidates", headers=t["family"])
        ).status_code == 403
        r = await client.post(
            f"/alerts/{alert}/dispatch", json={"worker_id": None}, headers=t["operator"]
        )
        assert r.status_code == 200, r.text
        assert r.json()["kind"] == "emergency"
        assert r.json()["worker_id"] == "1"
        assert r.json()["candidate"]["worker_id"] == "1"
        view = (
            await client.get(f"/residents/{s.residents['a1']}/status", headers=t["family"])
        ).json()
        progress = view["alerts"][0]["progress"]
        assert progress["worker_name"] == "Chen Jing"
        assert progress["status"] == "offered"
        assert progress["eta_s"] >= 0
        offers = (await client.get("/orders", headers=t["worker"])).json()["items"]
        assert [o["alert_id"] for o in offers] == [alert]


async def test_workers_and_reports_by_role(db_url: str) -> None:
    await seed(db_url)
    await add_worker(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(
            client, "admin", "supervisor", "operator", "operator_b", "worker", "family"
        )
        seen = {n: await client.get("/workers", headers=t[n]) for n in t}
        assert [w["worker_id"] for w in seen["operator"].json()] == ["1"]
        assert seen["operator_b"].json() == []
        assert [w["worker_id"] for w in seen["worker"].json()] == ["1"]
        assert seen["family"].status_code == 403
        assert (await client.get("/workers/1", headers=t["operator_b"])).status_code == 404
        r = await client.post(
            "/workers/1/status", json={"status": "off_shift"}, headers=t["worker"]
        )
        assert r.json()["status"] == "off_shift"
        r = await client.post(
            "/workers/1/location", json={"lat": 32.38, "lon": 120.56}, headers=t["worker"]
        )
        assert r.status_code == 204
        r = await client.post(
            "/workers/1/location", json={"lat": 32.38, "lon": 120.56}, headers=t["operator"]
        )
        assert r.status_code == 403
        now = datetime.now(UTC)
        q = {"start": (now - timedelta(days=1)).isoformat(), "end": now.isoformat()}
        report = await client.get("/reports/summary", params=q, headers=t["supervisor"])
        assert report.status_code == 200, report.text
        assert {"orders_by_type", "response_times"} <= report.json().keys()
        assert (
            await client.get("/reports/summary", params=q, headers=t["operator"])
        ).status_code == 403


async def test_a_booking_window_out_of_range_is_refused_with_the_reason(db_url: str) -> None:
    """A window at the end of year 9999 was booked (201) and every assignment of it then
    answered 500 (the date arithmetic overflowed); now such windows are refused."""
    s = await seed(db_url)
    await add_worker(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(client, "family", "operator")
        far = {**booking(s), "window_start": "9999-12-31T23:00:00Z",
               "window_end": "9999-12-31T23:59:59Z"}  # fmt: skip
        r = await client.post("/orders", json=far, headers=t["family"])
        assert r.status_code == 422
        assert "days ahead" in r.text
        start = datetime.now(UTC) + timedelta(hours=1)
        for window in (
            (start, datetime(9999, 12, 31, tzinfo=UTC)),  # ending in year 9999
            (datetime(1, 1, 2, tzinfo=UTC), start),  # starting in year 1
            (start, start + timedelta(days=40)),
        ):
            body = {**booking(s), "window_start": window[0].isoformat(),
                    "window_end": window[1].isoformat()}  # fmt: skip
            r = await client.post("/orders", json=body, headers=t["operator"])
            assert r.status_code == 422, r.text
        ahead = start + timedelta(days=300)  # within the horizon: booked and assigned
        body = {**booking(s), "window_start": ahead.isoformat(),
                "window_end": (ahead + timedelta(hours=2)).isoformat()}  # fmt: skip
        r = await client.post("/orders", json=body, headers=t["family"])
        assert r.status_code == 201, r.text
        assigned = await client.post(
            f"/orders/{r.json()['id']}/assign", json={"worker_id": "1"}, headers=t["operator"]
        )
        assert assigned.status_code == 200, assigned.text


async def test_a_closed_alert_is_not_dispatched(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)
    alert = s.alerts["a1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(client, "operator")
        r = await client.post(f"/alerts/{alert}/resolve", headers=t["operator"],
                              json={"outcome": "false", "note": "pressed by mistake"})  # fmt: skip
        assert r.status_code == 200, r.text
        r = await client.post(f"/alerts/{alert}/dispatch", json={}, headers=t["operator"])
        # before: 200 and an emergency order offered to a worker for a false alarm
        assert r.status_code == 409, r.text
        assert "closed" in r.json()["detail"]
    assert await scalar(db_url, "SELECT count(*) FROM work_orders") == 0


async def test_the_api_dispatches_with_the_deployments_sla_and_offer_timeout(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)
    settings = api_settings(db_url, dispatch_sla_s=600.0, dispatch_offer_timeout_s=20.0)
    async with api_client(settings) as (_app, client):
        t = await tokens(client, "operator")
        r = await client.post(f"/alerts/{s.alerts['a1']}/dispatch", json={}, headers=t["operator"])
        assert r.status_code == 200, r.text
        order = r.json()
    at = {k: datetime.fromisoformat(order[k]) for k in
          ("window_start", "sla_due_at", "updated_at", "offer_expires_at")}  # fmt: skip
    # before: the defaults (900 s, 60 s), whatever the deployment configured
    assert at["sla_due_at"] - at["window_start"] == timedelta(seconds=600)
    assert at["offer_expires_at"] - at["updated_at"] == timedelta(seconds=20)


async def test_a_family_and_the_worker_do_not_see_who_turned_the_job_down(db_url: str) -> None:
    """Before 2026-12-03 GET /orders/{id} showed a family (and the worker who took the
    job) ``declined_by`` and every offer's worker: the ids of the colleagues who had
    turned their parent's job down, and the operator's user id."""
    s = await seed(db_url)
    await add_worker(db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await add_workers(conn, [NewWorker("2", "Wang Fang", DISTRICT_A,
                                           frozenset({"cleaning"}), NEAR_A1)])  # fmt: skip
        await add_shift(conn, "2", datetime.now(UTC) - timedelta(hours=1),
                        datetime.now(UTC) + timedelta(hours=8))  # fmt: skip
        await set_status(conn, "2", WorkerStatus.AVAILABLE, now=datetime.now(UTC))
        await conn.commit()
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(client, "family", "operator", "worker")
        order_id = (await client.post("/orders", json=booking(s), headers=t["family"])).json()["id"]
        for worker in ("2", "1"):
            r = await client.post(f"/orders/{order_id}/assign", json={"worker_id": worker},
                                  headers=t["operator"])  # fmt: skip
            assert r.status_code == 200, r.text
            if worker == "2":
                async with await psycopg.AsyncConnection.connect(db_url) as conn:
                    await service.reject(conn, order_id, worker_id="2", actor="worker:2",
                                         reason="too far")  # fmt: skip
        r = await client.post(f"/orders/{order_id}/accept", headers=t["worker"])
        assert r.status_code == 200, r.text
        assert "declined_by" not in r.json()
        centre = (await client.get(f"/orders/{order_id}", headers=t["operator"])).json()
        assert centre["declined_by"] == ["2"]
        assert "worker:2" in {e["actor"] for e in centre["events"]}
        # a decline's reason is the centre's, in its event; the order's notes are shared
        assert [e["detail"].get("reason") for e in centre["events"] if e["kind"] == "rejected"] == [
            "too far"
        ]
        assert centre["notes"] == "the kitchen"
        for name in ("family", "worker"):
            seen = (await client.get(f"/orders/{order_id}", headers=t[name])).json()
            assert "declined_by" not in seen, name
            assert {e["worker_id"] for e in seen["events"]} <= {None, "1"}, name
            assert {e["actor"] for e in seen["events"]} <= {
                f"family:{s.users['family']}",
                "family",  # the worker sees that a family booked, not who
                "operator",
                "worker",
                "worker:1",
                "dispatcher",
            }, name
            assert "too far" not in json.dumps(seen), name
        listed = (await client.get("/orders", headers=t["family"])).json()["items"]
        assert [("declined_by" in o) for o in listed] == [False]


async def test_routine_work_goes_to_a_trained_worker_of_the_operators_district(
    db_url: str,
) -> None:
    """Before 2026-12-03 an operator could offer a district's booking to any worker id in
    the city (and so learn which ids exist elsewhere), trained for the work or not."""
    s = await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await sync_catalogue(conn, load_catalogue())
        await add_workers(conn, [
            NewWorker("B1", "Li Hua", DISTRICT_B, frozenset({"cleaning"}), NEAR_A1),
            NewWorker("3", "Sun Li", DISTRICT_A, frozenset({"caregiver"}), NEAR_A1),
        ])  # fmt: skip
        await conn.commit()
    async with api_client(api_settings(db_url)) as (_app, client):
        t = await tokens(client, "family", "operator", "admin")
        order_id = (await client.post("/orders", json=booking(s), headers=t["family"])).json()["id"]
        assign = f"/orders/{order_id}/assign"
        other = await client.post(assign, json={"worker_id": "B1"}, headers=t["operator"])
        assert other.status_code == 404, other.text
        untrained = await client.post(assign, json={"worker_id": "3"}, headers=t["operator"])
        assert untrained.status_code == 422, untrained.text
        assert "lacks cleaning" in untrained.text
        assert await scalar(db_url, "SELECT state FROM work_orders WHERE id = %s", order_id) == (
            "created"
        )
        covering = await client.post(assign, json={"worker_id": "B1"}, headers=t["admin"])
        assert covering.status_code == 200, covering.text  # the city's admin may lend a worker
        assert covering.json()["worker_id"] == "B1"
