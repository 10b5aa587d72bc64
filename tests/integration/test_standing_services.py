"""`POST /residents/{id}/services`: a resident's standing services (meals on weekdays, a
bath on Wednesdays), booked day by day by the recurring run, never twice, none while
the resident is away from home, none after the service is ended; ending one cancels its
visits not begun. Before 2026-12-04 a standing service could only be set by listing the
resident in the catalogue file's rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg

from dispatch.day import make_recurring
from dispatch.recurring import Recurring, local_zone
from eldercare.absence import set_away
from tests.api_support import api_client, api_settings, bearer, login, seed
from tests.integration.test_api_orders import add_worker
from tests.support import rows

NO_RULES = Recurring(local_zone(), ())  # the residents' own services only


async def book_days(db_url: str, first: date, days: int) -> int:
    made = 0
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        for i in range(days):
            made += await make_recurring(conn, NO_RULES, first + timedelta(days=i),
                                         now=datetime.now(UTC))  # fmt: skip
    return made


async def test_standing_services_are_booked_day_by_day_until_ended(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)  # and the service catalogue, as the dispatch service writes it
    a1 = s.residents["a1"]
    today = datetime.now(local_zone()).date()
    first = today + timedelta(days=1)  # tomorrow on: every visit is still ahead
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        family = bearer((await login(client, "family"))["access_token"])
        meals = {"service_type": "meal_delivery", "weekdays": ["mon", "tue", "wed", "thu",
                 "fri", "sat", "sun"], "start": "11:00", "end": "12:30",
                 "starts_on": first.isoformat(), "notes": "soft food"}  # fmt: skip
        r = await client.post(f"/residents/{a1}/services", json=meals, headers=op)
        assert r.status_code == 201, r.text
        meal_id = r.json()["id"]
        assert r.json()["weekdays"] == ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        bath = {"service_type": "bathing", "weekdays": [first.strftime("%a").lower()],
                "start": "14:00", "end": "16:00"}  # fmt: skip
        r = await client.post(f"/residents/{a1}/services", json=bath, headers=family)
        assert r.status_code == 201, r.text  # the family arranges it too
        family_b = bearer((await login(client, "family_b"))["access_token"])
        worker = bearer((await login(client, "worker"))["access_token"])
        assert (await client.post(f"/residents/{a1}/services", json=bath,
                                  headers=family_b)).status_code == 404  # fmt: skip
        assert (await client.post(f"/residents/{a1}/services", json=bath,
                                  headers=worker)).status_code == 403  # fmt: skip
        for bad in ({**bath, "service_type": "emergency_help"}, {**bath, "service_type": "x"},
                    {**bath, "end": "13:00"}, {**bath, "weekdays": ["someday"]},
                    {**bath, "weekdays": []}):  # fmt: skip
            r = await client.post(f"/residents/{a1}/services", json=bad, headers=op)
            assert r.status_code == 422, (bad, r.text)
        listed = (await client.get(f"/residents/{a1}/services", headers=family)).json()
        assert [x["service_type"] for x in listed] == ["meal_delivery", "bathing"]

    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        away_day = first + timedelta(days=3)  # a night in hospital: no meal that day
        await set_away(conn, a1, starts_at=datetime.combine(away_day, datetime.min.time(),
                                                            local_zone()),
                       ends_at=datetime.combine(away_day + timedelta(days=1),
                                                datetime.min.time(), local_zone()),
                       reason="hospital", actor="user:1", now=datetime.now(UTC))  # fmt: skip
    assert await book_days(db_url, first, 7) == 6 + 1  # 7 meals less the day away, 1 bath
    assert await book_days(db_url, first, 7) == 0  # made again: nothing twice
    booked = await rows(db_url, "SELECT service_type, count(*) FROM work_orders"
                        " WHERE resident_id = %s AND kind = 'recurring' GROUP BY 1 ORDER BY 1",
                        a1)  # fmt: skip
    assert booked == [("bathing", 1), ("meal_delivery", 6)]

    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        r = await client.delete(f"/residents/{a1}/services/{meal_id}", headers=op)
        assert r.status_code == 200, r.text
        assert len(r.json()["cancelled_orders"]) == 6
        again = await client.delete(f"/residents/{a1}/services/{meal_id}", headers=op)
        assert again.status_code == 404
        listed = (await client.get(f"/residents/{a1}/services", headers=op)).json()
        assert [x["service_type"] for x in listed] == ["bathing"]
        everything = (await client.get(f"/residents/{a1}/services?ended=true", headers=op)).json()
        assert [x["ends_on"] is not None for x in everything] == [True, False]
    assert await book_days(db_url, first, 7) == 0  # ended: no meal any more
    states = await rows(db_url, "SELECT state, count(*) FROM work_orders WHERE resident_id = %s"
                        " AND service_type = 'meal_delivery' GROUP BY 1", a1)  # fmt: skip
    assert states == [("cancelled", 6)]
