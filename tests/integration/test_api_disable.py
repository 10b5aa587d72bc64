"""An admin disables an account (someone who left the centre) or revokes an API key (a
leaked one): its tokens are refused at once, it cannot sign in or refresh, and the
audit log keeps who did it. Before 2026-12-04 neither could be done at all."""

from __future__ import annotations

from tests.api_support import api_client, api_settings, bearer, login, password, seed
from tests.support import rows


async def test_a_disabled_account_is_refused_everywhere(db_url: str) -> None:
    s = await seed(db_url)
    operator = s.users["operator"]
    async with api_client(api_settings(db_url)) as (_app, client):
        admin = bearer((await login(client, "admin"))["access_token"])
        tokens = await login(client, "operator")
        op = bearer(tokens["access_token"])
        assert (await client.get("/me", headers=op)).status_code == 200  # cached from here on
        no = await client.post(f"/users/{operator}/disable", headers=op)
        assert no.status_code == 403
        assert (await client.get("/users", headers=op)).status_code == 403
        listed = {u["id"]: u for u in (await client.get("/users", headers=admin)).json()}
        assert (listed[operator]["username"], listed[operator]["disabled_at"]) == ("operator", None)
        r = await client.post(f"/users/{operator}/disable", headers=admin)
        assert r.status_code == 204, r.text
        assert (await client.get("/me", headers=op)).status_code == 401
        again = await client.post(
            "/auth/token", data={"username": "operator", "password": password("operator")}
        )
        assert again.status_code == 401
        r = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 401
        assert (await client.post(f"/users/{operator}/disable", headers=admin)).status_code == 204
        assert (await client.post("/users/999999/disable", headers=admin)).status_code == 404
        r = await client.post(f"/users/{s.users['admin']}/disable", headers=admin)
        assert r.status_code == 409  # not one's own: the centre would lose its admin
        assert (await client.get("/me", headers=admin)).status_code == 200
        listed = {u["id"]: u for u in (await client.get("/users", headers=admin)).json()}
        assert listed[operator]["disabled_at"] is not None
        assert listed[s.users["admin"]]["disabled_at"] is None
    audit = await rows(db_url, "SELECT resource FROM audit_log WHERE action = 'disable_user'")
    assert audit == [(f"user:{operator}",)]  # once, though asked twice


async def test_a_revoked_key_is_refused(db_url: str) -> None:
    await seed(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        admin = bearer((await login(client, "admin"))["access_token"])
        r = await client.post("/api-keys", json={"name": "hospital", "scopes": ["alerts:read"]},
                              headers=admin)  # fmt: skip
        assert r.status_code == 201, r.text
        key_id, key = r.json()["id"], bearer(r.json()["key"])
        assert (await client.get("/alerts", headers=key)).status_code == 200
        assert (await client.post(f"/api-keys/{key_id}/revoke", headers=admin)).status_code == 204
        assert (await client.get("/alerts", headers=key)).status_code == 401
        keys = (await client.get("/api-keys", headers=admin)).json()
        assert [(k["id"], k["name"], k["revoked_at"] is not None) for k in keys] == [
            (key_id, "hospital", True)
        ]
        assert "key" not in keys[0]
        assert f"_{keys[0]['prefix']}_" in r.json()["key"]  # told apart by its prefix
        assert (await client.post("/api-keys/999999/revoke", headers=admin)).status_code == 404
    audit = await rows(db_url, "SELECT resource FROM audit_log WHERE action = 'revoke_api_key'")
    assert audit == [(f"key:{key_id}",)]
