"""`PUT /residents/{id}/away`: a resident away from home for a while (a hospital stay, a
week with family). Their visits in that time are cancelled and no routine visit is
booked then (by the centre, the family or the recurring rules), emergencies still are,
and the alert engine's profile carries the absence. `DELETE` ends it early. Before
2026-12-04 the only way to record an absence was to mark the resident as left, which
unpaired their band."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.detectors.types import Away
from alerts.profiles import load_profile
from dispatch.assign import catalogue_from_db
from dispatch.day import make_recurring
from dispatch.model import OrderKind
from dispatch.recurring import load_recurring
from dispatch.store import DispatchError, create_order
from tests.api_support import api_client, api_settings, bearer, login
from tests.integration.test_api_orders import booking
from tests.integration.test_resident_leaving import seed_with_band
from tests.support import rows


async def test_a_resident_in_hospital_gets_no_visits_and_the_engine_knows(db_url: str) -> None:
    s, a1 = await seed_with_band(db_url, "a1")
    now = datetime.now(UTC)
    monday = (now + timedelta(days=7 - now.weekday())).date()  # the welfare visit's day
    back = datetime.combine(monday, datetime.min.time(), UTC) + timedelta(days=1, hours=12)
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        inside = (await client.post("/orders", json=booking(s), headers=op)).json()["id"]
        after = {**booking(s), "window_start": (back + timedelta(hours=1)).isoformat(),
                 "window_end": (back + timedelta(hours=3)).isoformat()}  # fmt: skip
        later = (await client.post("/orders", json=after, headers=op)).json()["id"]

        stay = {"ends_at": back.isoformat(), "reason": "hospital"}
        r = await client.put(f"/residents/{a1}/away", json=stay, headers=op)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["cancelled_orders"] == [inside]  # the one after they are back stays
        assert got["away"]["reason"] == "hospital"
        assert datetime.fromisoformat(got["away"]["ends_at"]) == back
        assert got["wristbands"] != []  # still theirs: nothing to pair again

        family = bearer((await login(client, "family"))["access_token"])
        r = await client.post("/orders", json=booking(s), headers=family)
        assert r.status_code == 422
        assert "away from home" in r.json()["detail"]
        assert (await client.get(f"/residents/{a1}", headers=family)).json()["away"] is not None
        status = (await client.get(f"/residents/{a1}/status", headers=family)).json()
        assert status["away"]["reason"] == "hospital"  # the family page reads it here

        early = (back - timedelta(hours=1)).isoformat()
        refused = [
            ({"ends_at": (now - timedelta(hours=1)).isoformat(), "reason": "x"}, "ended already"),
            ({"ends_at": (now + timedelta(days=400)).isoformat(), "reason": "x"}, "left instead"),
            ({"starts_at": back.isoformat(), "ends_at": early, "reason": "x"}, "after it starts"),
        ]
        for bad, why in refused:
            r = await client.put(f"/residents/{a1}/away", json=bad, headers=op)
            assert r.status_code == 422, r.text
            assert why in r.json()["detail"], r.text
        naive = {"ends_at": back.replace(tzinfo=None).isoformat(), "reason": "x"}
        assert (
            await client.put(f"/residents/{a1}/away", json=naive, headers=op)
        ).status_code == 422

    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        profile = await load_profile(conn, a1)
        assert profile is not None
        assert profile.away is not None
        assert profile.away.covers(now + timedelta(minutes=1))
        assert not profile.away.covers(back)
        await make_recurring(conn, load_recurring(), monday, now=now)  # skipped: away
        catalogue = await catalogue_from_db(conn)
        order, _ = await create_order(  # an SOS from the hospital ward still gets an order
            conn, kind=OrderKind.EMERGENCY, resident_id=a1, service=catalogue.emergency_type(),
            window_start=now, window_end=now + timedelta(hours=1), actor="dispatcher", now=now,
        )  # fmt: skip
        with pytest.raises(DispatchError, match="away from home"):
            await create_order(
                conn, kind=OrderKind.BOOKED, resident_id=a1, service=catalogue["cleaning"],
                window_start=now + timedelta(hours=1), window_end=now + timedelta(hours=2),
                actor="operator:1", now=now,
            )  # fmt: skip
    states = await rows(db_url, "SELECT id, kind, state FROM work_orders WHERE resident_id = %s"
                        " ORDER BY id", a1)  # fmt: skip
    assert states == [(inside, "booked", "cancelled"), (later, "booked", "created"),
                      (order.id, "emergency", "created")]  # fmt: skip


async def test_back_early_the_absence_ends_and_visits_can_be_booked(db_url: str) -> None:
    s, a1 = await seed_with_band(db_url, "a1")
    now = datetime.now(UTC)
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.delete(f"/residents/{a1}/away", headers=op)
        assert r.status_code == 404  # none recorded
        stay = {
            "starts_at": (now + timedelta(days=2)).isoformat(),
            "ends_at": (now + timedelta(days=9)).isoformat(),
            "reason": "with family",
        }
        assert (await client.put(f"/residents/{a1}/away", json=stay, headers=op)).status_code == 200
        assert (await client.post("/orders", json=booking(s), headers=op)).status_code == 201
        r = await client.delete(f"/residents/{a1}/away", headers=op)
        assert r.status_code == 200, r.text
        assert r.json()["away"] is None
        assert (await client.get(f"/residents/{a1}/status", headers=op)).json()["away"] is None
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        profile = await load_profile(conn, a1)
    assert profile is not None
    assert profile.away is None
    audit = await rows(db_url, "SELECT action FROM audit_log WHERE resource = %s ORDER BY id",
                       f"resident:{a1}")  # fmt: skip
    assert [a for (a,) in audit if a in ("resident_away", "resident_back")] == [
        "resident_away", "resident_back"]  # fmt: skip


async def test_not_for_a_resident_who_left(db_url: str) -> None:
    _s, a2 = await seed_with_band(db_url, "a2")
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.post(f"/residents/{a2}/leave", json={"reason": "moved"}, headers=op)
        assert r.status_code == 200, r.text
        stay = {"ends_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(), "reason": "x"}
        r = await client.put(f"/residents/{a2}/away", json=stay, headers=op)
        assert r.status_code == 409
        assert "left the service" in r.json()["detail"]


def test_an_absence_must_end_after_it_starts() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="end after it starts"):
        Away(t, t)
