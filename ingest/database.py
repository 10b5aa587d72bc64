"""How ingest waits for its database: never for ever.

A database that stops answering while its socket stays open (a failover, a network
partition, a proxy or load balancer left holding the connection) stalled ingest for
good: no psycopg call has a deadline of its own, a stop request waited behind the
write, and even once the database was back the old connection never answered again
(found in review on 2026-12-04). Each of ingest's sessions now has

- ``connect_timeout`` (libpq): a connection attempt ends;
- TCP keepalives and ``tcp_user_timeout`` (libpq): the kernel notices a peer that is
  gone, whether the connection is idle or has data in flight;
- ``statement_timeout`` (server side, where the statements are short): the server
  cancels a statement stuck on a lock or I/O;
- a reply deadline of its own (:func:`within`): for a peer that takes the bytes and
  never answers, which none of the above sees.

Giving up on a connection closes its socket *before* cancelling the work on it:
cancelled with the socket open, psycopg first asks the server to cancel the query and
waits for that (up to 10 s in psycopg 3.3), through the same silent path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from eldercare.settings import Settings

T = TypeVar("T")


class AbandonedError(Exception):
    """Told to stop while waiting for the database: what is not committed is not acked,
    so the broker sends it again to the next ingest process (as after ``kill -9``)."""


class NoReplyError(psycopg.OperationalError):
    """The database did not answer within the reply deadline; the connection is closed.
    An OperationalError, so every caller's retry for a lost connection applies."""


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """The ``ELDERCARE_INGEST_DB_*`` settings (docs/architecture.md, "Database away")."""

    connect_s: int = 10
    statement_s: float = 30.0
    reply_s: float = 60.0
    keepalives_idle_s: int = 30
    keepalives_interval_s: int = 10
    keepalives_count: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> DbTimeouts:
        return cls(
            connect_s=settings.ingest_db_connect_timeout_s,
            statement_s=settings.ingest_db_statement_timeout_s,
            reply_s=settings.ingest_db_reply_timeout_s,
            keepalives_idle_s=settings.ingest_db_keepalives_idle_s,
            keepalives_interval_s=settings.ingest_db_keepalives_interval_s,
            keepalives_count=settings.ingest_db_keepalives_count,
        )

    def options(self, url: str, *, statement_timeout: bool = True) -> dict[str, Any]:
        """libpq connection parameters to add to ``url`` (psycopg merges them over it).

        ``statement_timeout=False`` for sessions whose statements may rightly be long
        (migrations, storage upkeep): they keep the connect and TCP limits."""
        # as long as the keepalives take to give up on an idle peer: also for data sent
        # and never acknowledged, where keepalives do not apply
        unacked_ms = 1000 * (self.keepalives_idle_s
                             + self.keepalives_interval_s * self.keepalives_count)  # fmt: skip
        params: dict[str, Any] = {
            "connect_timeout": self.connect_s,
            "keepalives": 1,
            "keepalives_idle": self.keepalives_idle_s,
            "keepalives_interval": self.keepalives_interval_s,
            "keepalives_count": self.keepalives_count,
            "tcp_user_timeout": unacked_ms,
        }
        if statement_timeout:
            own = conninfo_to_dict(url).get("options") or ""
            timeout_ms = max(1, round(self.statement_s * 1000))
            params["options"] = f"{own} -c statement_timeout={timeout_ms}".strip()
        return params


async def connect(
    url: str, timeouts: DbTimeouts, *, statement_timeout: bool = True, **kwargs: Any
) -> psycopg.AsyncConnection[TupleRow]:
    """A connection with ``timeouts`` (see :meth:`DbTimeouts.options`)."""
    options = timeouts.options(url, statement_timeout=statement_timeout)
    return await psycopg.AsyncConnection.connect(url, **options, **kwargs)


def abandon(conn: psycopg.AsyncConnection[TupleRow] | None) -> None:
    """Close ``conn``'s socket at once, without a word to the server: whatever awaits a
    reply on it then fails instead of waiting (a half-open socket never answers)."""
    if conn is not None and not conn.closed:
        with contextlib.suppress(Exception):  # finishing a broken socket may itself fail
            conn.pgconn.finish()


async def within(
    conn: psycopg.AsyncConnection[TupleRow],
    work: Coroutine[Any, Any, T],
    *,
    seconds: float | None,
) -> T:
    """The result of ``work`` (database calls on ``conn``), or, if it has none within
    ``seconds`` (None: no deadline), :class:`NoReplyError` with ``conn`` abandoned.

    Cancelled meanwhile (a stop), ``conn`` is abandoned too and the cancellation goes
    on at once: the transaction in flight was not committed, or its commit is in
    doubt, which the caller's retry and the broker's redelivery cover."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        await _abandoned(conn, task)
        raise
    if not task.done():
        await _abandoned(conn, task)
        raise NoReplyError(f"no reply from the database within {seconds:g} s")
    return task.result()


async def _abandoned(conn: psycopg.AsyncConnection[TupleRow], task: asyncio.Future[T]) -> None:
    abandon(conn)
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: it is the lost connection's, and reported as ours


async def unless(event: asyncio.Event, work: Coroutine[Any, Any, T]) -> T:
    """The result of ``work``, unless ``event`` (a stop) is set first: then ``work`` is
    cancelled (its connection closed first, as :func:`within` does) and
    :class:`AbandonedError` raised; what it was writing stays unacked."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        abandoned = not task.done()
        if abandoned:
            task.cancel()
            await asyncio.wait({task})
    if abandoned:
        if not task.cancelled():
            task.exception()  # the abandoned connection's error, not news
        raise AbandonedError
    return task.result()
