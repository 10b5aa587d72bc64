"""An ASGI fast path for the hottest read: ``GET /residents/{id}/status``.

Families poll their parent's status; it is most of the API's traffic. This
middleware answers exactly that request (no query string) itself, before
routing, with the same function the documented route uses
(:func:`api.routes.status.status_body`), so the two cannot drift apart. It
skips Starlette's router (a regex per route), the request/response wrappers
and the exception middleware, which together cost about a third of the
request's CPU. Anything else, or anything unusual, goes down the normal stack.
"""

from __future__ import annotations

import re
from typing import Any

from psycopg_pool import PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import Problem, problem_response
from api.routes.status import status_body
from api.schemas import MAX_ID

_STATUS = re.compile(r"/residents/([1-9][0-9]{0,18})/status")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class StatusFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        match = _STATUS.fullmatch(scope["path"])
        token = _bearer(scope["headers"]) if match else None
        if match is None or token is None or int(match.group(1)) > MAX_ID:
            await self.app(scope, receive, send)  # the route answers (401, 422...)
            return
        try:
            body = await status_body(scope["app"].state.ctx, token, int(match.group(1)))
        except Problem as exc:
            await _send_response(
                send,
                problem_response(
                    exc.status, exc.detail, title=exc.title, headers=exc.headers, **exc.extra
                ),
            )
            return
        except PoolTimeout:
            await _send_response(
                send,
                problem_response(
                    503, "the service is overloaded; retry shortly", headers={"Retry-After": "1"}
                ),
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


async def _send_response(send: Send, response: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})
