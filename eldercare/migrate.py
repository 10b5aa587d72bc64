"""Versioned SQL migrations, applied by `eldercare migrate` and at service start.

Files are ``NNN_name.sql`` (both storage paths) or ``NNN_name.timescale.sql`` /
``NNN_name.plain.sql`` (one path each). The path is chosen once, at the first
migration: TimescaleDB when the extension can be created, plain PostgreSQL
otherwise, and recorded in ``schema_meta``. Applying is idempotent and
serialised across processes by an advisory lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import TupleRow

from eldercare.db import StoragePath
from eldercare.logs import get_logger

log = get_logger(__name__)
_LOCK_KEY = 0x0E1DE2CA12  # advisory lock id for migrations
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
_NO_TRANSACTION = "-- migrate: no-transaction"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        return not self.sql.startswith(_NO_TRANSACTION)


def migrations_for(path: StoragePath) -> list[Migration]:
    """The ordered migrations of one storage path (pure: reads only packaged files)."""
    wanted = "timescale" if path is StoragePath.TIMESCALE else "plain"
    found: dict[int, Migration] = {}
    for entry in resources.files("eldercare.migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match or match.group(3) not in (None, wanted):
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two migrations numbered {version:03d}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _choose_path(conn: psycopg.Connection[TupleRow], prefer: str) -> StoragePath:
    if prefer == "plain":
        return StoragePath.PLAIN
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    preloaded = preload is not None and "timescaledb" in str(preload[0])
    conn.commit()
    if available is None or not preloaded:
        why = "not installed" if available is None else "not in shared_preload_libraries"
        if prefer == "timescaledb":
            raise RuntimeError(f"TimescaleDB was required but the extension is {why}")
        log.info("storage_plain", reason=f"timescaledb {why}")
        return StoragePath.PLAIN
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        conn.rollback()
        if prefer == "timescaledb":
            raise
        log.warning("timescaledb_unusable", error=str(exc).splitlines()[0])
        return StoragePath.PLAIN
    conn.commit()
    return StoragePath.TIMESCALE


def migrate(
    url: str, *, prefer: str = "auto", until: int | None = None
) -> tuple[StoragePath, list[str]]:
    """Apply what is missing (up to version ``until``, if given: tests of a migration's
    data conversion); returns the storage path and the migrations applied now."""
    applied_now: list[str] = []
    with psycopg.connect(url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        conn.commit()
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            row = conn.execute("SELECT value FROM schema_meta WHERE key = 'storage'").fetchone()
            if row is None:
                path = _choose_path(conn, prefer)
                conn.execute(
                    "INSERT INTO schema_meta (key, value) VALUES ('storage', %s)", (path.value,)
                )
                conn.commit()
            else:
                path = StoragePath(str(row[0]))
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            conn.commit()
            for migration in migrations_for(path):
                if migration.version in done or (until is not None and migration.version > until):
                    continue
                _apply(conn, migration)
                applied_now.append(f"{migration.version:03d}_{migration.name}")
                log.info("migration_applied", version=migration.version, name=migration.name)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.commit()
    return path, applied_now


def _apply(conn: psycopg.Connection[TupleRow], migration: Migration) -> None:
    record = "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)"
    if migration.transactional:
        conn.execute(migration.sql.encode())
        conn.execute(record, (migration.version, migration.name))
        conn.commit()
        return
    conn.autocommit = True
    try:
        conn.execute(migration.sql.encode())
        conn.execute(record, (migration.version, migration.name))
    finally:
        conn.autocommit = False
