"""`PATCH /residents/{id}`: the centre changes a resident's record (contacts, home,
conditions, living alone), and the alert engine's profile follows. Before 2026-12-04
a record could only be created: a family's new phone number could not be entered."""

from __future__ import annotations

import psycopg

from alerts.profiles import load_profile
from tests.api_support import DISTRICT_A, DISTRICT_B, api_client, api_settings, bearer, login, seed
from tests.integration.test_api_orders import add_worker, booking
from tests.support import rows

CONTACTS = [{"name": "Wang Lei", "relation": "son", "phone": "139 0000 0000"},
            {"name": "Wang Jing", "relation": "daughter", "phone": "137 0000 0000"}]  # fmt: skip


async def test_the_centre_changes_a_record_and_the_engine_sees_it(db_url: str) -> None:
    s = await seed(db_url)
    a1 = s.residents["a1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])
        change = {"contacts": CONTACTS, "conditions": ["hypertension", "dementia"],
                  "living_alone": False, "home_lat": 32.39, "home_lon": 120.57}  # fmt: skip
        r = await client.patch(f"/residents/{a1}", json=change, headers=op)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["contacts"] == CONTACTS
        assert got["home"] == {"lat": 32.39, "lon": 120.57}
        assert (got["name"], got["birth_year"], got["district"]) == ("Wang Fang", 1938, DISTRICT_A)
        family = bearer((await login(client, "family"))["access_token"])
        seen = await client.get(f"/residents/{a1}", headers=family)
        assert seen.json()["contacts"] == CONTACTS
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        profile = await load_profile(conn, a1)  # what the engine reloads every 30 s
    assert profile is not None
    assert profile.conditions == frozenset({"hypertension", "dementia"})
    assert profile.lives_alone is False
    audit = await rows(db_url, "SELECT detail FROM audit_log WHERE action = 'update_resident'")
    assert audit == [({"fields": ["conditions", "emergency_contacts", "home_lat", "home_lon",
                                  "living_alone"]},)]  # fmt: skip


async def test_a_wrong_change_is_refused_and_writes_nothing(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)  # and the service catalogue
    a1, b1 = s.residents["a1"], s.residents["b1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        op = bearer((await login(client, "operator"))["access_token"])

        async def patch(rid: int, body: object) -> int:
            return (await client.patch(f"/residents/{rid}", json=body, headers=op)).status_code

        assert await patch(a1, {"conditions": ["flu"]}) == 422
        assert await patch(a1, {"home_lat": 32.0}) == 422  # without its longitude
        assert await patch(a1, {"name": None}) == 422
        assert await patch(a1, {"nickname": "x"}) == 422
        assert await patch(a1, {"district": DISTRICT_B}) == 403  # an admin's move
        assert await patch(b1, {"address": "x"}) == 404  # another district's resident
        await client.patch(f"/residents/{s.residents['a2']}", json={"external_ref": "R-1"},
                           headers=op)  # fmt: skip
        assert await patch(a1, {"external_ref": "R-1"}) == 409
        worker = bearer((await login(client, "worker"))["access_token"])
        r = await client.patch(f"/residents/{a1}", json={"address": "x"}, headers=worker)
        assert r.status_code == 403
        booked = await client.post("/orders", json=booking(s), headers=op)
        assert booked.status_code == 201, booked.text
        admin = bearer((await login(client, "admin"))["access_token"])
        r = await client.patch(f"/residents/{a1}", json={"district": DISTRICT_B}, headers=admin)
        assert r.status_code == 200
        # the visit not yet done goes with the resident: district B's centre sees it now
        op_b = bearer((await login(client, "operator_b"))["access_token"])
        seen = await client.get(f"/orders/{booked.json()['id']}", headers=op_b)
        assert seen.status_code == 200
    got = await rows(db_url, "SELECT conditions, home_lat, name, external_ref, district"
                     " FROM residents WHERE resident_id = %s", a1)  # fmt: skip
    assert got == [(["hypertension"], 32.3812, "Wang Fang", None, DISTRICT_B)]
