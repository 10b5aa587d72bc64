"""Pairing a band kept unpaired (a centre's stock) when it is handed out, or moving it
to another resident: `eldercare wristband pair` and the registry. Before 2026-12-04 a
band provisioned unpaired could never be paired, and its SOS raised nothing."""

from __future__ import annotations

import json

import psycopg
import pytest

from eldercare.registry import (
    NewResident,
    RegistryError,
    add_residents,
    pair_wristband,
    provision_wristbands,
    revoke_wristband,
)
from tests.integration.test_register_cli import eldercare
from tests.support import rows


async def _setup(db_url: str) -> tuple[int, int]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        a, b = await add_residents(conn, [
            NewResident(name=n, birth_year=1940, district="D1", home_lat=32.0, home_lon=120.9)
            for n in ("A", "B")
        ])  # fmt: skip
        await provision_wristbands(conn, [("STOCK-1", None), ("STOCK-2", None), ("GONE", None)])
        await revoke_wristband(conn, "GONE")
        await conn.commit()
    return a, b


async def test_a_stock_band_is_paired_and_moved(db_url: str) -> None:
    a, b = await _setup(db_url)
    done = eldercare(db_url, "wristband", "pair", "STOCK-1", str(a))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"device_id": "STOCK-1", "resident_id": a,
                                       "previous_resident_id": None}  # fmt: skip
    moved = eldercare(db_url, "wristband", "pair", "STOCK-1", str(b))  # handed on to B
    assert json.loads(moved.stdout)["previous_resident_id"] == a
    got = await rows(db_url, "SELECT device_id, resident_id FROM wristbands ORDER BY 1")
    assert got == [("GONE", None), ("STOCK-1", b), ("STOCK-2", None)]


@pytest.mark.parametrize(
    ("band", "who", "message"),
    [
        ("NOPE", "a", "no wristband NOPE"),
        ("GONE", "a", "is revoked"),
        ("STOCK-2", "b", "already wears another band"),
        ("STOCK-2", "999999", "no resident 999999"),
    ],
)
async def test_a_pairing_that_cannot_be_is_refused_with_its_reason(
    db_url: str, band: str, who: str, message: str
) -> None:
    a, b = await _setup(db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        await pair_wristband(conn, "STOCK-1", b)
        await conn.commit()
    resident = {"a": str(a), "b": str(b)}.get(who, who)
    done = eldercare(db_url, "wristband", "pair", band, resident)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    got = await rows(db_url, "SELECT device_id, resident_id FROM wristbands ORDER BY 1")
    assert got == [("GONE", None), ("STOCK-1", b), ("STOCK-2", None)]  # nothing changed


async def test_pairing_in_a_transaction_refused_leaves_it_usable(db_url: str) -> None:
    """A refusal inside the caller's transaction (the API's) rolls back to before it."""
    a, b = await _setup(db_url)
    async with await psycopg.AsyncConnection.connect(db_url) as conn, conn.transaction():
        await pair_wristband(conn, "STOCK-1", a)
        with pytest.raises(RegistryError, match="already wears"):
            await pair_wristband(conn, "STOCK-2", a)
        await pair_wristband(conn, "STOCK-2", b)
    got = await rows(db_url, "SELECT device_id, resident_id FROM wristbands ORDER BY 1")
    assert got == [("GONE", None), ("STOCK-1", a), ("STOCK-2", b)]
