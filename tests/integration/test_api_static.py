"""The web pages are served on the API's origin when present; / goes to the console."""

from __future__ import annotations

from pathlib import Path

from tests.api_support import api_client, api_settings


async def test_pages_mounted_when_present(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "console").mkdir()
    (tmp_path / "console" / "index.html").write_text("<h1>console</h1>")
    (tmp_path / "family").mkdir()
    (tmp_path / "family" / "index.html").write_text("<h1>family</h1>")
    async with api_client(api_settings(db_url, api_web_dir=str(tmp_path))) as (_app, client):
        root = await client.get("/")
        assert root.status_code in (302, 307)
        assert root.headers["location"] == "/console/"
        page = await client.get("/console/")
        assert page.status_code == 200
        assert "console" in page.text
        assert (await client.get("/family/")).text == "<h1>family</h1>"
        missing = await client.get("/worker/")  # no such directory: not mounted
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


async def test_no_pages_no_root(db_url: str, tmp_path: Path) -> None:
    async with api_client(api_settings(db_url, api_web_dir=str(tmp_path))) as (_app, client):
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200
