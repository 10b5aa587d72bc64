"""`eldercare user add` and `eldercare apikey add` write what the API then accepts."""

from __future__ import annotations

import json

import pytest

from eldercare.cli import main
from tests.api_support import api_client, api_settings, bearer, seed


async def test_cli_user_and_key_work_against_the_api(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = await seed(db_url)
    monkeypatch.setenv("ELDERCARE_DATABASE_URL", db_url)
    monkeypatch.setenv("NEW_PW", "a-long-new-password")
    import asyncio

    code = await asyncio.to_thread(
        main,
        [
            "user",
            "add",
            "Li.Ming",
            "--role",
            "family",
            "--resident",
            str(s.residents["a2"]),
            "--password-env",
            "NEW_PW",
        ],
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["role"] == "family"
    code = await asyncio.to_thread(main, ["apikey", "add", "ci", "--scope", "residents:read"])
    assert code == 0
    key = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["key"]
    bad = await asyncio.to_thread(
        main, ["user", "add", "op2", "--role", "operator", "--password-env", "NEW_PW"]
    )
    assert bad == 2  # an operator needs a district: a clear error, not a traceback
    async with api_client(api_settings(db_url)) as (_app, client):
        r = await client.post(
            "/auth/token", data={"username": "li.ming", "password": "a-long-new-password"}
        )
        assert r.status_code == 200
        me = await client.get("/me", headers=bearer(r.json()["access_token"]))
        assert me.json()["resident_ids"] == [s.residents["a2"]]
        listed = await client.get("/residents", headers=bearer(key))
        assert len(listed.json()["items"]) == 3
