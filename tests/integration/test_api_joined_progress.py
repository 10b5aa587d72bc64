"""Who is coming, for an alert that joined another alert's emergency order (a fall after
the SOS, dispatch/joins.py): the family's status view and the console's alert list show
the order's worker for both alerts. Before 2026-12-04 the status view read only the
orders made for an alert itself, so the family saw nobody coming for the second one,
and the alert list carried no progress at all (the console's queue showed who was
coming only after the next order event, not after a reload)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from dispatch import service
from tests.api_support import api_client, api_settings, bearer, login, seed
from tests.integration.dispatch_support import open_alert
from tests.integration.test_api_orders import add_worker


async def test_both_alerts_show_the_worker_on_the_way(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)  # worker "1", Chen Jing, near a1
    a1, sos = s.residents["a1"], s.alerts["a1"]
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        first = (await service.dispatch_alert(conn, sos, actor="operator:1", now=now)).order
        fall = await open_alert(db_url, a1, at=now)
        joined = (await service.dispatch_alert(conn, fall, actor="operator:1", now=now)).order
    assert joined.id == first.id  # one visit for both
    async with api_client(api_settings(db_url)) as (_app, client):
        family = bearer((await login(client, "family"))["access_token"])
        status = (await client.get(f"/residents/{a1}/status", headers=family)).json()
        coming = {a["id"]: (a["progress"] or {}).get("worker_name") for a in status["alerts"]}
        assert coming == {sos: "Chen Jing", fall: "Chen Jing"}
        op = bearer((await login(client, "operator"))["access_token"])
        listed = (await client.get("/alerts", headers=op)).json()["items"]
        progress = {a["id"]: a["progress"] for a in listed if a["id"] in (sos, fall)}
        assert {k: (p or {}).get("worker_name") for k, p in progress.items()} == {
            sos: "Chen Jing",
            fall: "Chen Jing",
        }
        assert progress[fall]["order_id"] == first.id
        assert progress[fall]["status"] == "offered"


async def test_the_candidates_of_a_joined_alert_leave_out_who_declined_its_order(
    db_url: str,
) -> None:
    """Worker 1 turns the SOS's visit down; a fall then joins that visit. Before
    2026-12-04 the fall's candidates read only orders made for the fall itself, and
    offered the operator worker 1 again."""
    s = await seed(db_url)
    await add_worker(db_url)
    a1, sos = s.residents["a1"], s.alerts["a1"]
    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        order = (await service.dispatch_alert(conn, sos, actor="operator:1", now=now)).order
        assert order.worker_id == "1"
        await service.reject(conn, order.id, worker_id="1", actor="worker:1", now=now)
        fall = await open_alert(db_url, a1, at=now)
        joined = (await service.dispatch_alert(conn, fall, actor="operator:1", now=now)).order
        assert joined.id == order.id
        for alert in (sos, fall):
            ranked = await service.candidates_for_alert(conn, alert, now=now)
            assert "1" not in [c["worker_id"] for c in ranked]
