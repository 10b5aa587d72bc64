"""Every endpoint for every role, including the denials: 403 for an action the role
never has, 404 for a resource outside the caller's scope, 401 without credentials."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from dispatch import service
from tests.api_support import DISTRICT_A, ROLES, Seed, api_client, api_settings, bearer, login, seed
from tests.integration.test_api_orders import add_worker

CENTRE_A = ("admin", "supervisor", "operator")
OK, CONFLICT = {200}, {200, 409}
_counter = itertools.count()


def expect(allowed: dict[str, set[int]], *, default: set[int]) -> dict[str, set[int]]:
    return {role: allowed.get(role, default) for role in ROLES}


def a1_reader(ok: set[int]) -> dict[str, set[int]]:
    """Seen by the centre of district A, a1's family and the worker with an order at a1;
    404 for everyone else."""
    return expect(dict.fromkeys((*CENTRE_A, "family", "worker"), ok), default={404})


def order_cases(s: Seed, order: int, spare: int) -> list[tuple[str, str, Any, dict[str, set[int]]]]:
    """Orders, workers, alert dispatch, reports. ``order`` is offered to worker 1 (at a1);
    ``spare`` is a1's booked order nobody has yet."""
    a1, al_a1 = s.residents["a1"], s.alerts["a1"]
    start = datetime.now(UTC) + timedelta(hours=3)
    book = {
        "resident_id": a1,
        "service_type": "cleaning",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=2)).isoformat(),
    }
    seen_by = dict.fromkeys((*CENTRE_A, "family", "worker"), OK)
    worker_only = {"worker": {200, 409, 422}}
    now = datetime.now(UTC)
    report = f"?start={(now - timedelta(days=1)).isoformat()}&end={now.isoformat()}".replace(
        "+", "%2B"
    )
    return [
        ("GET", "/service-types", None, expect({}, default=OK)),
        ("GET", "/orders", None, expect({}, default=OK)),
        ("GET", f"/orders/{order}", None, expect(seen_by, default={404})),
        (
            "POST",
            "/orders",
            book,
            expect(
                {**{key: {201} for key in (*CENTRE_A, "family")}, "worker": {403}}, default={404}
            ),
        ),
        (
            "POST",
            f"/orders/{spare}/assign",
            {"worker_id": "1"},
            expect(
                {**{key: {200, 409, 422} for key in CENTRE_A}, "operator_b": {404}}, default={403}
            ),
        ),
        ("POST", f"/orders/{order}/accept", None, expect(worker_only, default={403})),
        ("POST", f"/orders/{order}/en-route", None, expect(worker_only, default={403})),
        (
            "POST",
            f"/orders/{order}/check-in",
            {"lat": 32.3812, "lon": 120.5634},
            expect(worker_only, default={403}),
        ),
        ("POST", f"/orders/{order}/check-out", {"notes": "ok"}, expect(worker_only, default={403})),
        ("POST", f"/orders/{order}/reject", None, expect(worker_only, default={403})),
        (
            "POST",
            f"/orders/{spare}/cancel",
            None,
            expect(
                {**{key: {200, 409} for key in (*CENTRE_A, "family")}, "worker": {403}},
                default={404},
            ),
        ),
        ("GET", "/workers", None, expect({"family": {403}, "family_b": {403}}, default=OK)),
        (
            "GET",
            "/workers/1",
            None,
            expect(
                {**dict.fromkeys((*CENTRE_A, "worker"), OK), "operator_b": {404}}, default={403}
            ),
        ),
        (
            "PUT",
            "/workers/1",
            {
                "name": "Chen Jing",
                "district": DISTRICT_A,
                "skills": ["caregiver", "cleaning"],
                "home_lat": 32.3830,
                "home_lon": 120.5650,
            },  # as add_worker registers it
            expect({**dict.fromkeys(CENTRE_A, OK), "operator_b": {403}}, default={403}),
        ),
        (
            "GET",
            "/workers/1/shifts",
            None,
            expect(
                {**dict.fromkeys((*CENTRE_A, "worker"), OK), "operator_b": {404}}, default={403}
            ),
        ),
        (
            "DELETE",
            "/workers/1/shifts?starts_at=2026-01-01T00:00:00Z",  # none starts then
            None,
            expect({key: {404} for key in (*CENTRE_A, "operator_b")}, default={403}),
        ),
        (
            "POST",
            "/workers/1/status",
            {"status": "available"},
            expect(
                {**dict.fromkeys((*CENTRE_A, "worker"), OK), "operator_b": {404}}, default={403}
            ),
        ),
        (
            "POST",
            "/workers/1/location",
            {"lat": 32.38, "lon": 120.56},
            expect({"worker": {204}}, default={403}),
        ),
        (
            "GET",
            f"/alerts/{al_a1}/candidates",
            None,
            expect({**dict.fromkeys(CENTRE_A, OK), "operator_b": {404}}, default={403}),
        ),
        (
            "POST",
            f"/alerts/{al_a1}/dispatch",
            {"worker_id": None},
            expect(
                {**{key: {200, 409, 422} for key in CENTRE_A}, "operator_b": {404}}, default={403}
            ),
        ),
        (
            "GET",
            f"/reports/summary{report}",
            None,
            expect(dict.fromkeys(("admin", "supervisor"), OK), default={403}),
        ),
        (  # last: a2 has left the service after it
            "POST",
            f"/residents/{s.residents['a2']}/leave",
            {"reason": "matrix"},
            expect({**dict.fromkeys(CENTRE_A, CONFLICT), "operator_b": {404}}, default={403}),
        ),
        (  # and back
            "POST",
            f"/residents/{s.residents['a2']}/return",
            None,
            expect({**dict.fromkeys(CENTRE_A, CONFLICT), "operator_b": {404}}, default={403}),
        ),
        (  # a2 away from home next month (nothing of a2's booked then)
            "PUT",
            f"/residents/{s.residents['a2']}/away",
            {
                "starts_at": (now + timedelta(days=30)).isoformat(),
                "ends_at": (now + timedelta(days=31)).isoformat(),
                "reason": "matrix",
            },
            expect({**dict.fromkeys(CENTRE_A, OK), "operator_b": {404}}, default={403}),
        ),
        (  # and not after all: 404 once it is off
            "DELETE",
            f"/residents/{s.residents['a2']}/away",
            None,
            expect({**{k: {200, 404} for k in CENTRE_A}, "operator_b": {404}}, default={403}),
        ),
        (  # last of all: worker 1 leaves the roster (409 while holding a visit)
            "POST",
            "/workers/1/retire",
            None,
            expect({**{k: {204, 409} for k in CENTRE_A}, "operator_b": {404}}, default={403}),
        ),
    ]


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
            "PATCH",
            f"/residents/{a1}",
            {"address": "1 Matrix Road"},
            {**dict.fromkeys(CENTRE_A, OK), **centre_write},
        ),
        (
            "POST",
            f"/residents/{a1}/geofences",
            {"name": "park", "lat": 32.38, "lon": 120.56, "radius_m": 200},
            {**{r: {201} for r in CENTRE_A}, **centre_write},
        ),
        (
            "PUT",
            f"/residents/{a1}/thresholds",
            {"overrides": {"min_alert_score": 2}, "reason": "matrix"},
            expect(dict.fromkeys(("admin", "supervisor"), OK), default={403}),
        ),
        (
            "DELETE",
            f"/residents/{a1}/geofences/999999",
            None,
            {**{r: {404} for r in CENTRE_A}, **centre_write},
        ),
        ("GET", f"/residents/{a1}/services", None, a1_reader(OK)),
        (
            "POST",
            f"/residents/{a1}/services",
            {"service_type": "cleaning", "weekdays": ["tue"], "start": "09:00", "end": "11:00"},
            {
                **{r: {201} for r in (*CENTRE_A, "family")},
                "worker": {403},
                "operator_b": {404},
                "family_b": {404},
            },
        ),
        (
            "DELETE",
            f"/residents/{a1}/services/999999",
            None,
            {
                **{r: {404} for r in (*CENTRE_A, "family", "operator_b", "family_b")},
                "worker": {403},
            },
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
        (
            "POST",
            "/wristbands/WB-A2/pair",
            {"resident_id": s.residents["a2"]},  # to the resident it is paired with: no change
            {**dict.fromkeys(CENTRE_A, OK), **centre_write},
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
        ("GET", "/users", None, expect({"admin": OK}, default={403})),
        ("GET", "/api-keys", None, expect({"admin": OK}, default={403})),
        ("POST", "/users/999999/disable", None, expect({"admin": {404}}, default={403})),
        ("POST", "/api-keys/999999/revoke", None, expect({"admin": {404}}, default={403})),
    ]


async def book_orders(db_url: str, s: Seed) -> tuple[int, int]:
    """Two cleaning visits at a1: the first offered to worker 1, the second unassigned."""
    start = datetime.now(UTC) + timedelta(hours=1)
    ids = []
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        for hours in (0, 4):
            order, _ = await service.book_order(
                conn,
                resident_id=s.residents["a1"],
                service_type="cleaning",
                window_start=start + timedelta(hours=hours),
                window_end=start + timedelta(hours=hours + 2),
                actor="operator:1",
            )
            ids.append(order.id)
        await service.assign_order(conn, ids[0], "1", actor="operator:1")
    return ids[0], ids[1]


async def test_every_endpoint_for_every_role(db_url: str) -> None:
    s = await seed(db_url)
    await add_worker(db_url)
    async with api_client(api_settings(db_url)) as (_app, client):
        tokens = {role: (await login(client, role))["access_token"] for role in ROLES}
        r = await client.post(
            "/wristbands",
            headers=bearer(tokens["admin"]),
            json={"device_id": "WB-A2", "resident_id": s.residents["a2"]},
        )
        assert r.status_code == 201
        order, spare = await book_orders(db_url, s)
        wrong: list[str] = []
        for method, path, body, expected in [*cases(s), *order_cases(s, order, spare)]:
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


async def test_the_matrix_covers_every_route(db_url: str) -> None:
    """A new endpoint without a row in the matrix fails here."""
    s = await seed(db_url)
    templates = {(m, _template(path)) for m, path, _b, _e in [*cases(s), *order_cases(s, 1, 2)]}
    async with api_client(api_settings(db_url)) as (app, _client):
        spec = app.openapi()
    missing = [
        f"{method.upper()} {path}"
        for path, ops in spec["paths"].items()
        for method in ops
        if path.startswith(("/residents", "/alerts", "/orders", "/workers", "/wristbands",
                            "/reports", "/audit", "/service-types", "/me"))
        and (method.upper(), _generic(path)) not in templates
    ]  # fmt: skip
    assert missing == []


def _template(path: str) -> str:
    """/residents/12/status?x=1 -> /residents/{}/status (ids: numbers, band WB-...)"""
    parts = path.split("?", maxsplit=1)[0].split("/")
    return "/".join("{}" if p.isdigit() or p.startswith("WB-") else p for p in parts)


def _generic(path: str) -> str:
    return "/".join("{}" if part.startswith("{") else part for part in path.split("/"))
