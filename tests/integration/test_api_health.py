"""Family status view, telemetry buckets and CSV, the audit log of health reads,
alert actions through the store, and idempotent creation."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

from tests.api_support import api_client, api_settings, bearer, login, seed
from tests.support import eventually, scalar


async def test_family_status_view(db_url: str) -> None:
    s = await seed(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        family = (await login(client, "family"))["access_token"]
        r = await client.get(f"/residents/{s.residents['a1']}/status", headers=bearer(family))
        assert r.status_code == 200
        body = r.json()
        assert body["state"] == "attention"
        assert body["reasons"] == ["open_alert"]
        assert body["battery_pct"] == 80
        assert body["worn"] is True
        assert body["steps_today"] in (0, 1234)  # 0 only if the seed straddled local midnight
        assert body["vitals"]["heart_rate"] == {
            "value": 72,
            "at": body["vitals"]["heart_rate"]["at"],
            "news2": 0,
        }
        assert body["vitals"]["systolic_bp"]["news2"] == 0
        assert body["vitals"]["temperature"]["news2"] is None  # skin temperature: not scored
        # a family member sees the location coarsened; an operator sees it exactly
        assert body["location"]["lat"] == 32.381
        assert body["location"]["accuracy_m"] >= 111
        assert [a["id"] for a in body["alerts"]] == [s.alerts["a1"]]
        assert body["services"] == {"upcoming": [], "past": []}
        # the ASGI fast path and the routed handler (taken with a query string) agree
        routed = await client.get(
            f"/residents/{s.residents['a1']}/status?via=route", headers=bearer(family)
        )
        assert routed.status_code == 200
        assert routed.json() == body
        other = await client.get(f"/residents/{s.residents['b1']}/status", headers=bearer(family))
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"
        assert other.json()["status"] == 404
        operator = (await login(client, "operator"))["access_token"]
        exact = (
            await client.get(f"/residents/{s.residents['a1']}/status", headers=bearer(operator))
        ).json()
        assert exact["location"]["lat"] == 32.381234
        # a resident with no band: attention, no data
        nodata = (
            await client.get(f"/residents/{s.residents['a2']}/status", headers=bearer(operator))
        ).json()
        assert nodata["reasons"] == ["no_wristband_data"]
        assert nodata["location"] is None


async def test_health_reads_are_audited(db_url: str) -> None:
    s = await seed(db_url)
    a1 = s.residents["a1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        family = (await login(client, "family"))["access_token"]
        assert (
            await client.get(f"/residents/{a1}/status", headers=bearer(family))
        ).status_code == 200
        assert (
            await client.get(f"/residents/{a1}/telemetry", headers=bearer(family))
        ).status_code == 200
        denied = await client.get(f"/residents/{s.residents['b1']}/status", headers=bearer(family))
        assert denied.status_code == 404

        async def written() -> bool:
            n = await scalar(
                db_url,
                "SELECT count(*) FROM audit_log WHERE actor = %s",
                f"user:{s.users['family']}",
            )
            return n == 2

        await eventually(written)
        rows = await scalar(
            db_url, "SELECT array_agg(action ORDER BY id) FROM audit_log WHERE resident_id = %s", a1
        )
        assert rows == ["read_status", "read_telemetry"]
        admin = (await login(client, "admin"))["access_token"]
        log = (await client.get(f"/audit?resident_id={a1}", headers=bearer(admin))).json()
        assert [e["action"] for e in log["items"]] == ["read_telemetry", "read_status"]
        assert all(e["actor"] == f"user:{s.users['family']}" for e in log["items"])


async def test_telemetry_buckets_and_csv(db_url: str) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    s = await seed(db_url, now=now)
    a1 = s.residents["a1"]
    start, end = now - timedelta(minutes=59), now + timedelta(minutes=1)
    params = {"start": start.isoformat(), "end": end.isoformat(), "bucket": "10m"}
    async with api_client(api_settings(db_url)) as (_app, client):
        token = (await login(client, "operator"))["access_token"]
        r = await client.get(f"/residents/{a1}/telemetry", params=params, headers=bearer(token))
        assert r.status_code == 200
        items = r.json()["items"]
        assert sum(b["readings"] for b in items) == 60  # one reading a minute in the range
        assert len(items) == 6
        expected = await scalar(
            db_url,
            "SELECT avg(hr)::float8 FROM telemetry WHERE time >= %s AND time < %s",
            start,
            start + timedelta(minutes=10),
        )
        assert abs(items[0]["hr_avg"] - float(expected)) < 1e-9  # type: ignore[arg-type]
        r = await client.get(
            f"/residents/{a1}/telemetry", params={**params, "format": "csv"}, headers=bearer(token)
        )
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [int(x["readings"]) for x in rows] == [b["readings"] for b in items]
        for bad in (
            {"bucket": "5 minutes"},
            {"bucket": "0m"},
            {"start": end.isoformat()},
            {"bucket": "1s", "start": (now - timedelta(days=30)).isoformat()},
        ):
            r = await client.get(
                f"/residents/{a1}/telemetry", params={**params, **bad}, headers=bearer(token)
            )
            assert r.status_code in (400, 422), bad
            assert r.headers["content-type"] == "application/problem+json"


async def test_alert_actions_follow_the_lifecycle(db_url: str) -> None:
    s = await seed(db_url)
    alert = s.alerts["a1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.post(f"/alerts/{alert}/escalate", headers=op)
        assert r.status_code == 200
        assert r.json()["kind"] == "escalated"
        r = await client.post(f"/alerts/{alert}/acknowledge", json={"note": "calling"}, headers=op)
        assert r.status_code == 200
        assert r.json()["state"] == "acknowledged"
        assert (await client.post(f"/alerts/{alert}/escalate", headers=op)).status_code == 409
        r = await client.post(f"/alerts/{alert}/acknowledge", headers=op)
        assert r.status_code == 409
        r = await client.post(f"/alerts/{alert}/resolve", json={"outcome": "false"}, headers=op)
        assert r.json()["state"] == "false_alarm"
        detail = (await client.get(f"/alerts/{alert}", headers=op)).json()
        assert [t["to_state"] for t in detail["transitions"]] == [
            "open",
            "open",
            "acknowledged",
            "false_alarm",
        ]
        assert detail["transitions"][-1]["actor"] == f"user:{s.users['operator']}"
        assert detail["transitions"][2]["note"] == "calling"
        # the centre sees who by name (the user's display name, else their user name)
        assert [t["actor_name"] for t in detail["transitions"]] == [None] + ["operator"] * 3
        # a family sees who by role, and only the notes the platform wrote (api.alert_view)
        family = bearer((await login(client, "family"))["access_token"])
        seen = (await client.get(f"/alerts/{alert}", headers=family)).json()["transitions"]
        assert [(t["to_state"], t["actor"], t["note"]) for t in seen] == [
            ("open", "engine", "raised"),
            ("open", "operator", "escalated to supervisor (level 1)"),
            ("acknowledged", "operator", ""),
            ("false_alarm", "operator", ""),
        ]
        assert {t["actor_name"] for t in seen} == {None}  # and no names
        closed = (await client.get("/alerts?state=closed", headers=op)).json()["items"]
        assert [a["id"] for a in closed] == [alert]
        r = await client.post(f"/alerts/{alert}/resolve", json={"outcome": "maybe"}, headers=op)
        assert r.status_code == 422


async def test_idempotent_create(db_url: str) -> None:
    await seed(db_url)
    body = {"name": "Sun Li", "birth_year": 1944, "district": "Rucheng"}
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        key = {"Idempotency-Key": "book-1"}
        first, second = await asyncio.gather(
            client.post("/residents", json=body, headers={**op, **key}),
            client.post("/residents", json=body, headers={**op, **key}),
        )
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert await scalar(db_url, "SELECT count(*) FROM residents WHERE name = 'Sun Li'") == 1
        other = await client.post(
            "/residents", json={**body, "birth_year": 1945}, headers={**op, **key}
        )
        assert other.status_code == 422
        third = await client.post("/residents", json=body, headers=op)  # no key: a new one
        assert third.status_code == 201
        # half a home (found by fuzzing: listed as {"lat": -1.9, "lon": null}, off schema)
        half = await client.post("/residents", json={**body, "home_lat": -1.9}, headers=op)
        assert half.status_code == 422
        assert "home_lat and home_lon go together" in half.text
        assert await scalar(db_url, "SELECT count(*) FROM residents WHERE name = 'Sun Li'") == 2
