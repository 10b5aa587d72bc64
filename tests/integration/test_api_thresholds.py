"""A clinician's thresholds and a safe zone set through the API reach the alert engine's profile."""

from __future__ import annotations

import re
from datetime import timedelta

import psycopg
import pytest

from alerts.detectors.types import Profile
from alerts.profiles import load_profile
from alerts.thresholds import ThresholdError, parse_overrides
from tests.api_support import api_client, api_settings, bearer, login, seed


async def test_thresholds_and_geofences_reach_the_engine(db_url: str) -> None:
    s = await seed(db_url)
    a1 = s.residents["a1"]
    async with api_client(api_settings(db_url)) as (_app, client):
        token = (await login(client, "supervisor"))["access_token"]
        bad = await client.put(
            f"/residents/{a1}/thresholds",
            headers=bearer(token),
            json={"overrides": {"spo2": {"low": [[300, 3]]}}},
        )
        assert bad.status_code == 422
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert "spo2" in bad.json()["detail"]

        overrides = {"spo2": {"low": [[84, 3], [86, 2], [88, 1]]}, "persistence_min_s": 600}
        r = await client.put(
            f"/residents/{a1}/thresholds",
            headers=bearer(token),
            json={"overrides": overrides, "reason": "chronic COPD, agreed with the GP"},
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"/residents/{a1}/geofences",
            headers=bearer(token),
            json={"name": "daughter", "lat": 32.40, "lon": 120.60, "radius_m": 300},
        )
        assert r.status_code == 201, r.text
        detail = (await client.get(f"/residents/{a1}", headers=bearer(token))).json()
        assert detail["thresholds"] == overrides

    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        profile = await load_profile(conn, a1)
        cur = await conn.execute(
            "SELECT set_by, reason FROM resident_alert_threshold_changes WHERE resident_id = %s",
            (a1,),
        )
        changes = await cur.fetchall()
    assert profile is not None
    assert profile.thresholds.persistence.min_duration == timedelta(seconds=600)
    assert "daughter" in {z.name for z in profile.safe_zones}
    assert len(changes) == 1
    assert changes[0][0].startswith("user:")
    assert changes[0][1] == "chronic COPD, agreed with the GP"

    async with api_client(api_settings(db_url)) as (_app, client):
        token = (await login(client, "supervisor"))["access_token"]
        r = await client.put(
            f"/residents/{a1}/thresholds", headers=bearer(token), json={"overrides": None}
        )
        assert r.status_code == 200
        assert (await client.get(f"/residents/{a1}", headers=bearer(token))).json()[
            "thresholds"
        ] == {}


HUGE = 10**400  # valid JSON; past the largest float


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ({"hr": {"high": [[HUGE, 3]]}}, "hr.high: bound ~1e400 outside 20-250"),
        ({"spo2": {"low": [[-HUGE, 3]]}}, "spo2.low: bound -~1e400 outside 50-100"),
        ({"day_range_m": HUGE}, "day_range_m: must be metres in [100, 50000]"),
    ],
)
async def test_a_number_past_the_largest_float_is_refused_by_name(
    db_url: str, overrides: dict[str, object], detail: str
) -> None:
    """Found by fuzzing the API: a band's bound of 10**400 was turned into a float before
    it was compared, and the OverflowError answered 500. It is refused like any bound
    out of range, naming the key."""
    s = await seed(db_url)
    with pytest.raises(ThresholdError, match=re.escape(detail)):
        parse_overrides(overrides, Profile(s.residents["a1"]))
    async with api_client(api_settings(db_url)) as (_app, client):
        token = (await login(client, "supervisor"))["access_token"]
        r = await client.put(
            f"/residents/{s.residents['a1']}/thresholds",
            headers=bearer(token),
            json={"overrides": overrides},
        )
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(detail)
