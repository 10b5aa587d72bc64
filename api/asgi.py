"""ASGI entry point for process managers: ``uvicorn --factory api.asgi:app``.

Settings come from ELDERCARE_* variables when the server starts (not at import).
Migrations are not applied here; run ``eldercare migrate`` first (``eldercare api`` does).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from eldercare.logs import configure_logging
from eldercare.settings import Settings


def app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    return create_app(settings)
