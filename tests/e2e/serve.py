"""The real API application for the browser tests: ``python -m tests.e2e.serve PORT``.

Settings come from the ELDERCARE_* environment, as for ``eldercare api``.
"""

from __future__ import annotations

import sys

import uvicorn

from api.asgi import app as make_app


def main() -> None:
    port = int(sys.argv[1])
    app = make_app()  # the deployment's factory: settings from ELDERCARE_*, logging set up
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
