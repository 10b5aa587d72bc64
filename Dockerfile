# The platform image: every service is `eldercare <command>` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package needs (no .venv, .git or tests in the build context copy).
# README.m[d]: copied when it exists (pyproject names it as the long description).
COPY pyproject.toml constraints.txt README.m[d] ./
COPY eldercare/ eldercare/
COPY ingest/ ingest/
COPY alerts/ alerts/
COPY dispatch/ dispatch/
COPY api/ api/
COPY simulators/ simulators/
RUN pip install -c constraints.txt . && rm -rf /src

# The web pages (operators' console, family and worker pages) the API serves: not part of
# the installed package, so copied beside it (before 2026-12-04 the image had none).
COPY web/ /opt/eldercare/web/
ENV ELDERCARE_API_WEB_DIR=/opt/eldercare/web

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/eldercare \
        --shell /usr/sbin/nologin eldercare
USER eldercare
WORKDIR /home/eldercare

ENTRYPOINT ["eldercare"]
CMD ["--help"]
