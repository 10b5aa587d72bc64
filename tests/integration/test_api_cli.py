"""`eldercare user add`, `user disable` and `apikey add` write what the API then accepts.

The parser is the real one; the commands' functions are called with the test's own
Settings (``main()`` would configure logging to pytest's captured stream).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from api.cli import add_api_key, add_user, disable_user_named
from eldercare.cli import build_parser, cmd_apikey_add, cmd_user_add, cmd_user_disable
from tests.api_support import api_client, api_settings, bearer, password, seed


async def test_cli_user_and_key_work_against_the_api(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = await seed(db_url)
    settings = api_settings(db_url)
    monkeypatch.setenv("NEW_PW", "a-long-new-password")
    args = build_parser().parse_args(
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
        ]
    )
    assert args.func is cmd_user_add
    code = await asyncio.to_thread(
        add_user,
        settings,
        username=args.username,
        role=args.role,
        display_name=args.display_name,
        district=args.district,
        worker_id=args.worker_id,
        residents=args.resident,
        password_env=args.password_env,
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["role"] == "family"
    args = build_parser().parse_args(["apikey", "add", "ci", "--scope", "residents:read"])
    assert args.func is cmd_apikey_add
    code = await asyncio.to_thread(
        add_api_key, settings, name=args.name, scopes=args.scope, district=args.district
    )
    assert code == 0
    key = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["key"]
    with pytest.raises(ValueError, match="district"):  # main() prints it and exits 2
        await asyncio.to_thread(
            add_user,
            settings,
            username="op2",
            role="operator",
            display_name="",
            district=None,
            worker_id=None,
            residents=[],
            password_env="NEW_PW",
        )
    async with api_client(settings) as (_app, client):
        r = await client.post(
            "/auth/token", data={"username": "li.ming", "password": "a-long-new-password"}
        )
        assert r.status_code == 200
        me = await client.get("/me", headers=bearer(r.json()["access_token"]))
        assert me.json()["resident_ids"] == [s.residents["a2"]]
        listed = await client.get("/residents", headers=bearer(key))
        assert len(listed.json()["items"]) == 3


async def test_cli_user_disable(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    await seed(db_url)
    settings = api_settings(db_url)
    args = build_parser().parse_args(["user", "disable", "family"])
    assert args.func is cmd_user_disable
    assert await asyncio.to_thread(disable_user_named, settings, username=args.username) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["already"] is False
    with pytest.raises(ValueError, match="no user"):
        await asyncio.to_thread(disable_user_named, settings, username="nobody")
    async with api_client(settings) as (_app, client):
        r = await client.post("/auth/token", data={"username": "family",
                                                   "password": password("family")})  # fmt: skip
        assert r.status_code == 401
