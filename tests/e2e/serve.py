"""The real API application for the browser tests: ``python -m tests.e2e.serve PORT``.

Settings come from the ELDERCARE_* environment, as for ``eldercare api``. The pages
import their shared modules from ``/lib/`` (docs/console.md); when the application
does not mount ``web/lib`` there yet, this adds that one static mount and nothing else.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from api.app import web_dir
from api.asgi import app as make_app
from eldercare.settings import Settings


def main() -> None:
    port = int(sys.argv[1])
    settings = Settings()
    app = make_app()  # the deployment's factory: settings from ELDERCARE_*, logging set up
    if not any(isinstance(r, Mount) and r.path == "/lib" for r in app.routes):
        app.mount("/lib", StaticFiles(directory=web_dir(settings) / "lib"), name="lib")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
