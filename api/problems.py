"""Errors as RFC 9457 problem+json: ``{type, title, status, detail}``.

Routes raise :class:`Problem`; the handlers here turn it, FastAPI's validation
errors, Starlette's HTTP errors and an exhausted database pool (503) into
problem documents. An unexpected exception answers a generic 500 without its
message (which could carry data) and is logged with its type only.
"""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from eldercare.logs import get_logger

log = get_logger(__name__)
MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):  # noqa: N818 - RFC 9457's word
    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _TITLES.get(status, "Error")
        self.headers = headers
        self.extra = extra


def not_found(what: str) -> Problem:
    return Problem(404, f"{what} not found")


def forbidden(detail: str = "your role does not allow this") -> Problem:
    return Problem(403, detail)


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(
        msgspec.json.encode(body), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


async def _problem(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Problem):
        return await _unexpected(request, exc)
    return problem_response(
        exc.status, exc.detail, title=exc.title, headers=exc.headers, **exc.extra
    )


async def _validation(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        return await _unexpected(request, exc)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem_response(422, detail, errors=errors)


async def _http(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        return await _unexpected(request, exc)
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(exc.status_code, str(exc.detail), headers=headers)


async def _pool_timeout(_request: Request, _exc: Exception) -> Response:
    log.warning("api_pool_exhausted")
    return problem_response(
        503, "the service is overloaded; retry shortly", headers={"Retry-After": "1"}
    )


async def _data_error(_request: Request, _exc: Exception) -> Response:
    # a value PostgreSQL cannot take (a NUL character, out of range): the input's fault
    return problem_response(422, "a value in the request cannot be stored or compared")


async def _rolled_back(_request: Request, _exc: Exception) -> Response:
    # a deadlock or serialization failure with a concurrent request (an emergency offer
    # locking the worker a worker's own action locks too): rolled back whole, so a retry
    # is safe. It was a 500 "unexpected error" before 2026-12-04.
    log.warning("api_transaction_rolled_back")
    return problem_response(
        503,
        "a concurrent change conflicted; nothing was changed, retry",
        headers={"Retry-After": "1"},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("api_unhandled", path=request.url.path, error_type=type(exc).__name__)
    return problem_response(500, "an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    app.add_exception_handler(psycopg.DataError, _data_error)
    for rolled_back in (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
        app.add_exception_handler(rolled_back, _rolled_back)
    app.add_exception_handler(Exception, _unexpected)
