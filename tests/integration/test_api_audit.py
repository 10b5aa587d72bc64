"""The audit writer: ``GET /audit`` writes what is queued on its own connection, and
one entry the database can never take costs itself, not the audit log.

Both were found by fuzzing the API (2026-12-03): concurrent ``GET /audit`` requests
each held a pooled connection and asked the pool for a second one to write the queue,
so the pool deadlocked until its 10 s timeout (503s for everyone); and an entry with a
resident id beyond bigint (from a message on the internal alerts topic) went back on
the queue with its whole batch after every failure, so no audit entry was written
again until a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from api.audit import AuditWriter
from api.deps import ApiContext
from api.identity import create_api_key
from api.live import resident_of
from api.principal import Principal, Role
from eldercare.db import checked_pool
from tests.api_support import DISTRICT_A, api_client, api_settings, bearer, login, seed
from tests.support import scalar

AUDITOR = Principal(role=Role.ADMIN, user_id=1, actor="user:1")


async def test_get_audit_writes_the_queue_on_its_own_connection(db_url: str) -> None:
    await seed(db_url)
    async with api_client(api_settings(db_url, db_pool_max=1)) as (app, client):
        admin = bearer((await login(client, "admin"))["access_token"])
        ctx: ApiContext = app.state.ctx
        writer = ctx.audit._task  # held still, so that the entries wait for GET /audit
        assert writer is not None
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        now = datetime.now(UTC)
        for i in range(3):
            ctx.audit.record(AUDITOR, "probe", f"probe:{i}", at=now)
        # one connection in the pool, held by the request itself: before, its flush
        # waited for a second one until the pool's timeout and the answer was 503
        r = await client.get("/audit?action=probe", headers=admin, timeout=httpx.Timeout(60))
        assert r.status_code == 200, r.text
        assert [e["resource"] for e in r.json()["items"]] == ["probe:2", "probe:1", "probe:0"]


async def test_an_entry_the_database_refuses_costs_only_itself(db_url: str) -> None:
    pool = checked_pool(db_url, min_size=1, max_size=2, timeout=10.0)
    await pool.open()
    try:
        audit = AuditWriter(pool)
        now = datetime.now(UTC)
        audit.record(AUDITOR, "poison-ok", "a", at=now, resident_id=None)
        audit.record(AUDITOR, "poison-ok", "b", at=now, resident_id=10**20)  # beyond bigint
        audit.record(AUDITOR, "poison-ok", "c", at=now, resident_id=None)
        assert await audit.flush() == 2
        assert audit.refused == 1
        audit.record(AUDITOR, "poison-ok", "d", at=now)
        assert await audit.flush() == 1  # the log goes on
        query = "SELECT array_agg(resource ORDER BY id) FROM audit_log WHERE action = 'poison-ok'"
        assert await scalar(db_url, query) == ["a", "c", "d"]
    finally:
        await pool.close()


def test_a_resident_id_out_of_range_on_the_internal_topic_is_nobodys() -> None:
    assert resident_of({"resident_id": 7}) == 7
    assert resident_of({"order": {"resident_id": 7}}) == 7
    for bad in (10**20, 0, -3, 2**63, "7", 7.0, True):
        assert resident_of({"resident_id": bad}) is None, bad


async def test_an_outage_while_writing_entry_by_entry_writes_nothing_twice(db_url: str) -> None:
    # the entry "cut" ends the writer's connection, once (a sequence is not rolled back),
    # after the entries before it were written one by one (a refused entry forced that)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("CREATE SEQUENCE audit_cut_once")
        await conn.execute(
            "CREATE FUNCTION audit_cut() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.resource = 'cut' AND nextval('audit_cut_once') = 1 THEN"
            " PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NEW; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER audit_cut BEFORE INSERT ON audit_log"
            " FOR EACH ROW EXECUTE FUNCTION audit_cut()"
        )
    pool = checked_pool(db_url, min_size=1, max_size=2, timeout=10.0)
    await pool.open()
    try:
        audit = AuditWriter(pool)
        now = datetime.now(UTC)
        for resource, resident in (("a", None), ("b", 10**20), ("c", None), ("cut", None),
                                   ("d", None)):  # fmt: skip
            audit.record(AUDITOR, "outage", resource, at=now, resident_id=resident)
        with pytest.raises(psycopg.OperationalError):
            await audit.flush()
        assert await audit.flush() == 2  # the rest, after the database came back
        query = "SELECT array_agg(resource ORDER BY id) FROM audit_log WHERE action = 'outage'"
        # before, the whole batch went back on the queue: "a" and "c" were written twice
        assert await scalar(db_url, query) == ["a", "c", "cut", "d"]
        assert audit.written == 4
        assert audit.refused == 1
    finally:
        await pool.close()


async def test_a_district_key_reads_the_audit_of_its_district_only(db_url: str) -> None:
    """Found by review: ``GET /audit`` ignored an API key's district, so a key bound to
    Rucheng read who had looked at Chengnan's residents (and every entry about no
    resident). It now reads its district's residents' entries; a city-wide key and
    an admin read them all."""
    s = await seed(db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        _, district_key = await create_api_key(
            conn, name="rucheng-audit", scopes=["audit:read"], district=DISTRICT_A
        )
        _, city_key = await create_api_key(conn, name="city-audit", scopes=["audit:read"])
        await conn.commit()
    a1, b1 = s.residents["a1"], s.residents["b1"]
    async with api_client(api_settings(db_url)) as (app, client):
        ctx: ApiContext = app.state.ctx
        writer = ctx.audit._task  # held still: GET /audit writes the entries itself
        assert writer is not None
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        now = datetime.now(UTC)
        for resident in (a1, b1, None):
            ctx.audit.record(AUDITOR, "probe", f"resident:{resident}", at=now, resident_id=resident)

        async def probed(headers: dict[str, str], **params: int) -> set[int | None]:
            r = await client.get("/audit", params={"action": "probe", **params}, headers=headers)
            assert r.status_code == 200, r.text
            return {e["resident_id"] for e in r.json()["items"]}

        assert await probed(bearer(district_key)) == {a1}
        assert await probed(bearer(district_key), resident_id=b1) == set()
        assert await probed(bearer(city_key)) == {a1, b1, None}
        admin = bearer((await login(client, "admin"))["access_token"])
        assert await probed(admin) == {a1, b1, None}
