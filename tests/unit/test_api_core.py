"""The API's pure core: tokens, the login limiter, permissions and scope, the family
view's attention rule and location blur, cursors, and who sees which live message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from api import problems
from api.family_view import build_status
from api.live import classify, visible
from api.pagination import decode_cursor, decode_id_cursor, encode_cursor
from api.principal import Perm, Principal, Role
from api.problems import Problem
from api.security import (
    InvalidToken,
    LoginLimiter,
    api_key_prefix,
    hash_password,
    issue_access_token,
    new_api_key,
    read_access_token,
    verify_password,
)
from eldercare.topics import ALERTS, DISPATCH

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Rugao


def test_access_token_roundtrip_expiry_and_forgery() -> None:
    sid = uuid.uuid4()
    token = issue_access_token(
        user_id=7, session_id=sid, secret="k" * 32, now=NOW, ttl=timedelta(minutes=15)
    )
    claims = read_access_token(token, secret="k" * 32, now=NOW + timedelta(minutes=14))
    assert (claims.user_id, claims.session_id) == (7, sid)
    with pytest.raises(InvalidToken):
        read_access_token(token, secret="k" * 32, now=NOW + timedelta(minutes=15))
    with pytest.raises(InvalidToken):
        read_access_token(token, secret="other" * 8, now=NOW)
    with pytest.raises(InvalidToken):
        read_access_token("garbage", secret="k" * 32, now=NOW)


def test_passwords_and_api_keys() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password("correct horse", hashed)
    assert not verify_password("wrong horse", hashed)
    assert not verify_password("anything", None)
    assert not verify_password("anything", "not-a-hash")
    prefix, key = new_api_key()
    assert api_key_prefix(key) == prefix
    assert api_key_prefix("eck_short_x") is None
    assert api_key_prefix("Bearer") is None


def test_login_limiter_window() -> None:
    limiter = LoginLimiter(attempts=3, window=timedelta(minutes=5))
    for i in range(3):
        assert limiter.retry_after("u|ip", NOW + timedelta(seconds=i)) is None
        limiter.failed("u|ip", NOW + timedelta(seconds=i))
    wait = limiter.retry_after("u|ip", NOW + timedelta(seconds=3))
    assert wait is not None
    assert 290 <= wait <= 301
    assert limiter.retry_after("other|ip", NOW) is None
    assert limiter.retry_after("u|ip", NOW + timedelta(minutes=5, seconds=1)) is None
    limiter.failed("v|ip", NOW)
    limiter.succeeded("v|ip")
    assert limiter.retry_after("v|ip", NOW) is None


def test_login_limiter_counts_an_attempt_when_it_lets_it_through() -> None:
    """Found by review: the limit was checked before the password and the failure
    counted after it, so concurrent guesses all passed the check. ``reserve`` checks
    and counts in one step: the fourth of three allowed attempts waits, however many
    of the first three are still being verified."""
    limiter = LoginLimiter(attempts=3, window=timedelta(minutes=5))
    assert [limiter.reserve("u|ip", NOW) for _ in range(3)] == [None, None, None]
    wait = limiter.reserve("u|ip", NOW)
    assert wait is not None
    assert 290 <= wait <= 301
    assert limiter.reserve("other|ip", NOW) is None
    limiter.succeeded("u|ip")  # the right password clears the attempts
    assert limiter.reserve("u|ip", NOW) is None


def test_limiter_memory_is_bounded() -> None:
    limiter = LoginLimiter(attempts=1, window=timedelta(minutes=5), max_keys=10)
    for i in range(100):
        limiter.failed(f"user{i}", NOW)
    assert len(limiter._failures) <= 10


def p(role: Role, **kw: Any) -> Principal:
    return Principal.build(actor="user:1", role=role, **kw)


def test_permissions_by_role_and_scope() -> None:
    assert p(Role.ADMIN).can(Perm.READ_AUDIT)
    assert not p(Role.SUPERVISOR).can(Perm.READ_AUDIT)
    assert p(Role.SUPERVISOR).can(Perm.READ_REPORTS)
    assert not p(Role.OPERATOR).can(Perm.READ_REPORTS)
    assert not p(Role.FAMILY).can(Perm.ACT_ALERTS)
    assert p(Role.FAMILY).can(Perm.BOOK_ORDERS)
    assert p(Role.WORKER).can(Perm.WORK_ORDERS)
    assert not p(Role.ADMIN).can(Perm.WORK_ORDERS)
    key = p(Role.INTEGRATION, scopes=frozenset({"alerts:read"}))
    assert key.can(Perm.READ_ALERTS)
    assert not key.can(Perm.READ_HEALTH)
    assert p(Role.ADMIN).resident_scope("x") == ("TRUE", [])
    assert p(Role.OPERATOR, district="A").resident_scope("x", "r.d") == ("r.d = %s", ["A"])
    assert p(Role.FAMILY, resident_ids=(3, 4)).resident_scope("x") == ("x = ANY(%s)", [[3, 4]])
    assert p(Role.FAMILY).resident_scope("x") == ("x = ANY(%s)", [[]])


def row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resident_id": 1,
        "name": "Wang",
        "conditions": [],
        "last_seen": NOW,
        "battery_pct": 60,
        "worn": True,
        "hr": 70,
        "spo2": 97,
        "bp_sys": 125,
        "skin_temp_c": 33.0,
        "vitals_at": NOW,
        "steps": 500,
        "steps_at": NOW,
        "lat": 32.3812345,
        "lon": 120.5634567,
        "loc_acc_m": 5.0,
        "loc_at": NOW,
        "alerts": [],
    }
    base.update(kw)
    return base


def status(r: dict[str, Any], *, family: bool = True) -> dict[str, Any]:
    return build_status(r, now=NOW, full_precision=not family, location_decimals=3)


def test_family_view_ok_and_each_reason() -> None:
    assert status(row())["state"] == "ok"
    assert status(row(spo2=90))["reasons"] == ["vital_sign"]  # NEWS2 3
    assert status(row(spo2=90, conditions=["copd_hypercapnic"]))["state"] == "ok"  # scale 2
    assert status(row(hr=115))["state"] == "ok"  # NEWS2 2: shown, not "attention"
    assert status(row(hr=115))["vitals"]["heart_rate"]["news2"] == 2
    assert status(row(last_seen=NOW - timedelta(minutes=16)))["reasons"] == ["not_seen_recently"]
    assert status(row(battery_pct=10))["reasons"] == ["battery_low"]
    assert status(row(worn=False))["reasons"] == ["not_worn"]
    alert = {"id": 5, "type": "fall", "severity": "critical", "state": "open", "opened_at": NOW}
    out = status(row(alerts=[alert]))
    assert out["reasons"] == ["open_alert"]
    assert out["alerts"][0]["progress"] is None


def test_family_view_steps_reset_at_local_midnight() -> None:
    yesterday = datetime(2026, 11, 22, 15, 59, tzinfo=UTC)  # 23:59 in Rugao
    assert status(row(steps_at=yesterday))["steps_today"] == 0
    today = datetime(2026, 11, 22, 16, 1, tzinfo=UTC)  # 00:01 in Rugao, the same day as NOW
    assert status(row(steps_at=today))["steps_today"] == 500


@given(st.floats(-90, 90), st.floats(-180, 180), st.integers(0, 6))
def test_family_location_is_blurred_never_sharper(lat: float, lon: float, d: int) -> None:
    out = build_status(
        row(lat=lat, lon=lon, loc_acc_m=1.0), now=NOW, full_precision=False, location_decimals=d
    )
    loc = out["location"]
    assert loc["lat"] == round(lat, d)
    assert loc["lon"] == round(lon, d)
    assert loc["accuracy_m"] >= 111_000 / 10**d * 0.99


@given(st.lists(st.integers(0, 2**63 - 1), min_size=1, max_size=1))
def test_cursor_roundtrip(key: list[int]) -> None:
    assert decode_cursor(encode_cursor(key), arity=1) == key
    assert decode_id_cursor(encode_cursor(key)) == key[0]


@pytest.mark.parametrize(
    "bad",
    [
        "!!",
        "e30",
        encode_cursor(["x"]),
        encode_cursor([-1]),
        encode_cursor([1, 2]),
        encode_cursor([True]),
    ],
)
def test_bad_cursors_are_400(bad: str) -> None:
    with pytest.raises(Problem) as err:
        decode_id_cursor(bad)
    assert err.value.status == 400


def test_live_visibility() -> None:
    alert = {"resident_id": 3, "alert_id": 9}
    assert classify(ALERTS, alert) == "alert"
    assert classify(DISPATCH, {"kind": "offered", "worker_id": "W1"}) == "offer"
    assert classify(DISPATCH, {"kind": "accepted"}) == "order"
    assert visible(p(Role.ADMIN), "alert", alert, "A")
    assert visible(p(Role.OPERATOR, district="A"), "alert", alert, "A")
    assert not visible(p(Role.OPERATOR, district="B"), "alert", alert, "A")
    assert not visible(p(Role.OPERATOR, district="A"), "alert", alert, None)
    assert visible(p(Role.FAMILY, resident_ids=(3,)), "alert", alert, "A")
    assert not visible(p(Role.FAMILY, resident_ids=(4,)), "alert", alert, "A")
    assert not visible(p(Role.FAMILY, resident_ids=(3,)), "offer", {"resident_id": 3}, "A")
    offer = {"resident_id": 3, "worker_id": "W1"}
    assert visible(p(Role.WORKER, worker_id="W1"), "offer", offer, "A")
    assert not visible(p(Role.WORKER, worker_id="W2"), "offer", offer, "A")
    assert not visible(p(Role.WORKER, worker_id="W1"), "alert", alert, "A")
    assert not visible(p(Role.INTEGRATION), "alert", alert, "A")
    # dispatch events carry the resident in their order
    event = {"kind": "accepted", "worker_id": "W1", "order": {"resident_id": 3}}
    assert visible(p(Role.FAMILY, resident_ids=(3,)), "order", event, "A")
    assert visible(p(Role.OPERATOR, district="A"), "order", event, "A")
    assert not visible(p(Role.FAMILY, resident_ids=(4,)), "order", event, "A")


def test_a_frame_naming_no_worker_reaches_no_worker() -> None:
    """Found by review: a frame's worker was compared as ``str(data.get("worker_id"))``,
    so a missing one read "None", a valid worker id, whose holder was sent every alert
    of the city. A worker sees a frame only if it names them, as a string."""
    worker_id = "None"
    worker = p(Role.WORKER, worker_id=worker_id)
    alert = {"resident_id": 3, "alert_id": 9}
    assert not visible(worker, "alert", alert, "A")
    assert not visible(worker, "order", {"kind": "created", "worker_id": None}, "A")
    assert not visible(worker, "order", {"kind": "created", "worker_id": ""}, "A")
    assert visible(worker, "offer", {"resident_id": 3, "worker_id": worker_id}, "A")
    assert not visible(p(Role.WORKER, worker_id="7"), "offer", {"worker_id": 7}, "A")
    assert not visible(p(Role.WORKER, worker_id=""), "order", {"worker_id": ""}, "A")


@pytest.mark.parametrize(
    "error", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure]
)
async def test_a_transaction_rolled_back_by_a_concurrent_one_is_a_503_to_retry(
    error: type[Exception],
) -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/x")
    async def x() -> None:
        raise error("deadlock detected")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get("/x")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "retry" in response.json()["detail"]
