"""Every endpoint for every role, including the denials: 403 for an action the role
never has, 404 for a resource outside the caller's scope, 401 without credentials."""

from __future__ import annotations

import itertools
from typing import Any

from tests.api_support import DISTRICT_A, ROLES, Seed, api_client, api_settings, bearer, login, seed

CENTRE_A = ("admin", "supervisor", "operator")
OK, CONFLICT = {200}, {200, 409}
_counter = itertools.count()


def expect(allowed: dict[str, set[int]], *, default: set[int]) -> dict[str, set[int]]:
    return {role: allowed.get(role, default) for role in ROLES}


def a1_reader(ok: set[int]) -> dict[str, set[int]]:
    """Seen by the centre of district A and a1's family; 404 for everyone else."""
    return expect(dict.fromkeys((*CENTRE_A, "family"), ok), default={404})


def cases(s: Seed) -> list[tuple[str, str, dict[str, Any] | None, dict[str, set[int]]]]:
    a1, b1, al_a1 = s.residents["a1"], s.residents["b1"], s.alerts["a1"]
    centre_write = {**{r: {403} for r in ("worker", "family", "family_b")}, "operator_b": {404}}
    admin_only = expect({"admin": {201}}, default={403})
    return [
        ("GET", "/me", None, expect({}, default=OK)),
        ("GET", "/residents", None, expect({}, default=OK)),
        ("GET", f"/residents/{a1}", None, a1_reader(OK)),
        ("GET", f"/residents/{a1}/status", None, a1_reader(OK)),
        ("GET", f"/residents/{a1}/telemetry", None, a1_reader(OK)),
        ("GET", f"/residents/{a1}/telemetry?format=csv", None, a1_reader(OK)),
        (
            "GET",
            f"/residents/{b1}/status",
            None,
            expect({"admin": OK, "operator_b": OK, "family_b": OK}, default={404}),
        ),
        ("GET", "/residents/999999/status", None, expect({}, default={404})),
        (
            "POST",
            "/residents",
            {"name": "New", "birth_year": 1940, "district": DISTRICT_A},
            expect({r: {201} for r in CENTRE_A}, default={403}),
        ),
        (
            "POST",
            f"/residents/{a1}/geofences",
            {"name": "park", "lat": 32.38, "lon": 120.56, "radius_m": 200},
            {**{r: {201} for r in CENTRE_A}, **centre_write},
        ),
        (
            "DELETE",
            f"/residents/{a1}/geofences/999999",
            None,
            {**{r: {404} for r in CENTRE_A}, **centre_write},
        ),
        ("GET", "/alerts", None, expect({}, default=OK)),
        ("GET", f"/alerts/{al_a1}", None, a1_reader(OK)),
        ("GET", "/alerts/999999", None, expect({}, default={404})),
        (
            "POST",
            f"/alerts/{al_a1}/escalate",
            {},
            {**dict.fromkeys(CENTRE_A, CONFLICT), **centre_write},
        ),
        (
            "POST",
            f"/alerts/{al_a1}/acknowledge",
            {},
            {**dict.fromkeys(CENTRE_A, CONFLICT), **centre_write},
        ),
        (
            "POST",
            f"/alerts/{al_a1}/resolve",
            {"outcome": "actionable"},
            {**dict.fromkeys(CENTRE_A, CONFLICT), **centre_write},
        ),
        (
            "GET",
            "/wristbands",
            None,
            expect(dict.fromkeys((*CENTRE_A, "operator_b"), OK), default={403}),
        ),
        (
            "POST",
            "/wristbands",
            {"device_id": "WB-NEW-{n}", "resident_id": s.residents["a2"]},
            {**{r: {201, 409} for r in CENTRE_A}, **centre_write},
        ),
        ("POST", "/wristbands/WB-A2/rotate", None, {**dict.fromkeys(CENTRE_A, OK), **centre_write}),
        (
            "POST",
            "/wristbands/WB-A2/revoke",
            None,
            {**{r: {204, 409} for r in CENTRE_A}, **centre_write},
        ),
        ("GET", "/audit", None, expect({"admin": OK}, default={403})),
        (
            "POST",
            "/users",
            {
                "username": "new-{n}",
                "password": "long-enough-1",
                "role": "family",
                "resident_ids": [a1],
            },
            admin_only,
        ),
        ("POST", "/api-keys", {"name": "k", "scopes": ["alerts:read"]}, admin_only),
    ]


async def test_every_endpoint_for_every_role(db_url: str) -> None:
    s = await seed(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        tokens = {role: (await login(client, role))["access_token"] for role in ROLES}
        r = await client.post(
            "/wristbands",
            headers=bearer(tokens["admin"]),
            json={"device_id": "WB-A2", "resident_id": s.residents["a2"]},
        )
        assert r.status_code == 201
        wrong: list[str] = []
        for method, path, body, expected in cases(s):
            anonymous = await client.request(method, path, json=body)
            if anonymous.status_code != 401:
                wrong.append(f"anonymous {method} {path}: {anonymous.status_code}")
            for role in ROLES:
                n = next(_counter)
                payload = None
                if body is not None:
                    payload = {
                        k: v.format(n=n) if isinstance(v, str) else v for k, v in body.items()
                    }
                r = await client.request(
                    method, path.format(n=n), json=payload, headers=bearer(tokens[role])
                )
                if r.status_code not in expected[role]:
                    wrong.append(f"{role} {method} {path}: {r.status_code} {r.text[:120]}")
                if r.status_code >= 400:
                    assert r.headers["content-type"] == "application/problem+json", (role, path)
                    assert {"type", "title", "status", "detail"} <= r.json().keys()
        assert not wrong, "\n".join(wrong)


async def test_lists_are_scoped(db_url: str) -> None:
    s = await seed(db_url)
    a1, a2, b1 = s.residents["a1"], s.residents["a2"], s.residents["b1"]
    expected_residents = {
        "admin": {a1, a2, b1},
        "supervisor": {a1, a2},
        "operator": {a1, a2},
        "operator_b": {b1},
        "worker": set(),
        "family": {a1},
        "family_b": {b1},
    }
    expected_alerts = {
        "admin": {s.alerts["a1"], s.alerts["b1"]},
        "supervisor": {s.alerts["a1"]},
        "operator": {s.alerts["a1"]},
        "operator_b": {s.alerts["b1"]},
        "worker": set(),
        "family": {s.alerts["a1"]},
        "family_b": {s.alerts["b1"]},
    }
    async with api_client(api_settings(db_url)) as (_app, client):
        for role in ROLES:
            token = (await login(client, role))["access_token"]
            residents = (await client.get("/residents", headers=bearer(token))).json()
            assert {r["id"] for r in residents["items"]} == expected_residents[role], role
            alerts = (await client.get("/alerts?state=all", headers=bearer(token))).json()
            assert {a["id"] for a in alerts["items"]} == expected_alerts[role], role
            # asking for another district's residents by filter does not widen the scope
            other = await client.get("/residents?district=Chengnan", headers=bearer(token))
            assert {r["id"] for r in other.json()["items"]} <= expected_residents[role]


async def test_pagination_walks_every_row_once(db_url: str) -> None:
    await seed(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        token = (await login(client, "admin"))["access_token"]
        seen: list[int] = []
        cursor = None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/residents", params=params, headers=bearer(token))).json()
            seen += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 3 == len(set(seen))
        bad = await client.get("/residents?cursor=!!notacursor", headers=bearer(token))
        assert bad.status_code == 400
