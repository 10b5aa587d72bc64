"""Schemathesis against the served OpenAPI: generated requests to every operation, as an
admin, a family member and a service worker, must never get a server error, and the
answers must be the documented ones (bounded examples, so it stays fast)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from tests.api_support import api_settings, password, seed
from tests.conftest import free_port
from tests.integration.test_api_orders import add_worker

EXAMPLES = 15
# no server error, and the answers are the documented ones (status, media type, schema).
# Left out: positive_data_acceptance (business rules beyond JSON Schema, such as a
# district for operators, answer 422 to schema-valid bodies).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SKIP = {("POST", "/auth/logout")}  # would end the session the run authenticates with


@pytest.fixture
def served_sync(db_url: str):  # type: ignore[no-untyped-def]
    asyncio.run(seed(db_url))
    asyncio.run(
        add_worker(db_url)
    )  # the catalogue and a worker, as `eldercare dispatch` leaves them
    app = create_app(api_settings(db_url, db_pool_max=4))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def test_no_server_errors(served_sync: str) -> None:
    base = served_sync
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    headers = {}
    for name in ("admin", "family", "worker"):
        r = httpx.post(f"{base}/auth/token", data={"username": name, "password": password(name)})
        headers[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    for op in operations:
        if (op.method.upper(), op.path) in SKIP:
            continue
        for name, auth in headers.items():

            @given(case=op.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                response = case.call(base_url=base, headers=auth)  # noqa: B023 - run() is called at once, in this iteration
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # collect every operation's failure, then report all
                failures.append(f"{name} {op.method.upper()} {op.path}: {str(exc)[:400]}")
    assert not failures, "\n".join(failures)
