"""docker-compose.yml, the Dockerfile and the Mosquitto config agree with the code.

Every ELDERCARE_* variable is a real setting, every command a real `eldercare`
subcommand, every mounted file exists, the broker is configured for ingest's
in-flight window, and no secret is committed.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from eldercare.cli import build_parser
from eldercare.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
PLATFORM_SERVICES = ("migrate", "ingest")
MOSQUITTO_DEFAULTS = {"max_inflight_messages": 20, "max_queued_messages": 1000}
SECRET_KEY = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY)$", re.IGNORECASE)
REQUIRED_VAR = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(:\?[^}]*)?\}$")  # ${VAR} or ${VAR:?message}
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}")
DUMMY = "x0123456789abcdef0123456789abcdef0123456789"  # long enough for a secret key


def load_compose(path: Path = COMPOSE) -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return compose


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host source, container target) of bind mounts in short syntax."""
    out = []
    for volume in service.get("volumes", []):
        source, target = _split(volume)[:2] if isinstance(volume, str) else (None, None)
        if isinstance(volume, dict) and volume.get("type") == "bind":
            source, target = volume["source"], volume["target"]
        if source and (source.startswith((".", "/", "$"))):
            out.append((source, target))
    return out


def _split(volume: str) -> list[str]:
    """Split ``source:target[:mode]`` on colons outside ``${...}``."""
    return re.split(r":(?![^{]*\})", volume)


def interpolate(text: str) -> str:
    return INTERPOLATION.sub(DUMMY, text)


def settings_fields() -> set[str]:
    return {name.lower() for name in Settings.model_fields}


def test_every_eldercare_variable_is_a_setting() -> None:
    compose = load_compose()
    fields = settings_fields()
    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix == "ELDERCARE_"
    names = {k for s in compose["services"].values() for k in environment(s)}
    names |= set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    names |= {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
        if "=" in line and line.lstrip("# ").startswith("ELDERCARE_")
    }
    ours = {n for n in names if n.upper().startswith(prefix)}
    assert ours, "compose sets no ELDERCARE_* variable"
    unknown = sorted(n for n in ours if n[len(prefix) :].lower() not in fields)
    assert not unknown, f"not fields of eldercare.settings.Settings: {unknown}"


@pytest.mark.parametrize("name", PLATFORM_SERVICES)
def test_platform_services_build_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = load_compose()["services"][name]
    for key in list(os.environ):
        if key.upper().startswith("ELDERCARE_"):
            monkeypatch.delenv(key)
    for key, value in environment(service).items():
        monkeypatch.setenv(key, interpolate(value))
    settings = Settings()  # a production Settings refuses a default secret
    assert settings.environment == "production"
    assert settings.require_database_url().startswith("postgresql://")
    if name == "ingest":
        endpoint = settings.mqtt()
        assert (endpoint.host, endpoint.username) == ("mosquitto", "eldercare-ingest")


@pytest.mark.parametrize("name", PLATFORM_SERVICES)
def test_commands_are_eldercare_subcommands(name: str) -> None:
    service = load_compose()["services"][name]
    argv = command(service)
    assert argv, f"{name} has no command"
    args = build_parser().parse_args(argv)  # SystemExit on an unknown command
    assert args.command == argv[0]


def test_service_dependencies() -> None:
    services = load_compose()["services"]
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    ingest = services["ingest"]["depends_on"]
    assert ingest["migrate"]["condition"] == "service_completed_successfully"
    assert "mosquitto" in ingest
    assert "healthcheck" in services["timescaledb"]


def test_mounted_files_exist() -> None:
    for name, service in load_compose()["services"].items():
        for source, target in bind_mounts(service):
            if "${" in source:  # the operator's file (password file), a required variable
                assert REQUIRED_VAR.match(source), f"{name}: {source} needs ${{VAR:?message}}"
                continue
            assert (REPO / source).exists(), f"{name} mounts missing {source} at {target}"


def mosquitto_conf() -> tuple[dict[str, str], dict[str, str]]:
    """The mosquitto.conf that compose mounts (options) and the service's mounts by target."""
    service = load_compose()["services"]["mosquitto"]
    mounts = {target: source for source, target in bind_mounts(service)}
    source = mounts["/mosquitto/config/mosquitto.conf"]
    options: dict[str, str] = {}
    for line in (REPO / source).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            options[key] = value.strip()
    return options, mounts


def test_mosquitto_is_configured_for_ingest() -> None:
    options, mounts = mosquitto_conf()
    for key, default in MOSQUITTO_DEFAULTS.items():
        assert int(options[key]) > default, f"{key} must be above Mosquitto's default {default}"
    assert options["allow_anonymous"] == "false"
    assert options["persistence"] == "true"
    assert options["password_file"] in mounts, "the password file is not mounted"
    assert options["acl_file"] in mounts, "the ACL is not mounted"
    service = load_compose()["services"]["mosquitto"]
    data = [v for v in service["volumes"] if _split(v)[1].rstrip("/") == "/mosquitto/data"]
    assert data, "no volume for Mosquitto's persistence"


def test_no_secret_literal_is_committed() -> None:
    compose = load_compose()
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                assert REQUIRED_VAR.match(value), f"{name}.{key} must be ${{VAR}}, not a literal"
            for password in re.findall(r"://[^/:@\s]+:([^@\s]+)@", value):
                assert REQUIRED_VAR.match(password), f"{name}.{key}: password in URL is a literal"
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"\$\{[A-Z_]*(PASSWORD|SECRET|KEY)[A-Z_]*:-", text), (
        "a secret variable has a committed default"
    )


def test_env_example_holds_placeholders_only() -> None:
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    values = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    secrets = {k: v for k, v in values.items() if SECRET_KEY.search(k)}
    assert secrets
    assert all(v.startswith("change-me") for v in secrets.values()), secrets
    required = set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    documented = {line.split("=", 1)[0].lstrip("# ") for line in lines if "=" in line}
    assert required <= documented, f"not in .env.example: {sorted(required - documented)}"


def test_dockerfile_installs_every_package() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.MULTILINE), "run as a non-root user"
    assert 'ENTRYPOINT ["eldercare"]' in text
    assert "pip install -c constraints.txt ." in text
    assert re.search(r"^COPY [^\n]*\bconstraints\.txt\b", text, re.MULTILINE)
    copied = set(re.findall(r"^COPY (\S+)/ ", text, re.MULTILINE))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.parent.name
        for p in REPO.glob("*/__init__.py")
        if any(fnmatch.fnmatch(p.parent.name, pattern) for pattern in include)
    }
    assert packages <= copied, f"Dockerfile does not COPY {sorted(packages - copied)}"
    assert all((REPO / c).is_dir() for c in copied)


def test_build_context_leaves_out_secrets_and_keeps_what_the_dockerfile_copies() -> None:
    """No .dockerignore before 2026-12-04: `docker build .` sent .env and .venv to the
    daemon."""
    ignore = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    for must in (".env", ".git/", ".venv/"):
        assert must in patterns
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copied = [*re.findall(r"^COPY (\S+)/ ", dockerfile, re.MULTILINE),
              "pyproject.toml", "constraints.txt", "README.md"]  # fmt: skip
    for source in copied:
        excluded = [p for p in patterns if not p.startswith("!")
                    and fnmatch.fnmatch(source, p.rstrip("/"))]  # fmt: skip
        assert not excluded, f"{source} is copied by the Dockerfile but ignored by {excluded}"


def test_constraints_pin_every_dependency_within_its_range() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in pyproject["dependencies"]]
    for extra in pyproject["optional-dependencies"].values():
        wanted += [Requirement(r) for r in extra]
    pins: dict[str, Version] = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = Version(version.strip())
    for req in wanted:
        pinned = pins.get(canonicalize_name(req.name))
        assert pinned is not None, f"constraints.txt does not pin {req.name}"
        assert req.specifier.contains(pinned, prereleases=True), f"{req.name}=={pinned}: {req}"
    for setup in (REPO / "README.md", REPO / ".ci" / "run"):
        assert "-c constraints.txt" in setup.read_text(encoding="utf-8"), setup


@functools.cache
def compose_command() -> list[str] | None:
    """The Compose CLI installed here: Docker's plugin (``docker compose``) or the
    standalone ``docker-compose`` (Debian's package); None when neither is."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=30
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


def dummy_environment(variables: set[str]) -> dict[str, str]:
    """A value for every variable the file interpolates: a port number for ``*_PORT``
    (Compose checks that a published port is a number), a dummy secret otherwise."""
    env = {name: "1024" if name.endswith("_PORT") else DUMMY for name in variables}
    env["MOSQUITTO_PASSWORD_FILE"] = "./deploy/mosquitto/acl"  # any existing file
    return env


def compose_config(
    compose: list[str], path: Path, variables: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``compose config -q`` on ``path`` (from its folder) with ``variables`` set."""
    return subprocess.run(
        [*compose, "-f", str(path), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=path.parent,
        env={**os.environ, **variables},
        timeout=60,
    )


@pytest.fixture
def compose() -> list[str]:
    """The Compose CLI (probed once per run); the test skips when there is none."""
    found = compose_command()
    if found is None:
        pytest.skip("neither docker compose nor docker-compose")
    return found


def test_docker_compose_config_is_valid(compose: list[str]) -> None:
    variables = set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    result = compose_config(compose, COMPOSE, dummy_environment(variables))
    assert result.returncode == 0, result.stderr


def test_compose_check_catches_an_invalid_port(compose: list[str], tmp_path: Path) -> None:
    """The validity check above can fail: Compose refuses a port that is not a number."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        'services:\n  web:\n    image: nginx\n    ports:\n      - "${WEB_PORT}:80"\n',
        encoding="utf-8",
    )
    assert compose_config(compose, broken, {"WEB_PORT": DUMMY}).returncode != 0


@pytest.mark.parametrize(
    "key", ["change-me-api-secret-key", "short-but-not-a-placeholder", DUMMY.replace("x", "")[:31]]
)
def test_production_refuses_a_placeholder_or_short_api_secret(key: str) -> None:
    """.env.example's placeholder passed before 2026-12-04 (only the built-in development
    key was refused), as did a key of any length."""
    with pytest.raises(ValueError, match="ELDERCARE_API_SECRET_KEY"):
        Settings(environment="production", api_secret_key=key)
    Settings(environment="production", api_secret_key="k" * 32)


def test_an_auto_dispatch_severity_no_alert_has_is_refused_at_start() -> None:
    """ "Critical" (a capital) silently turned emergency dispatch off before 2026-12-04."""
    with pytest.raises(ValueError, match="dispatch_auto_severities"):
        Settings(dispatch_auto_severities=["Critical"])
    assert Settings(dispatch_auto_severities=["critical", "high"]).dispatch_auto_severities


def test_an_auto_dispatch_type_no_alert_has_is_refused_at_start() -> None:
    """ "falls" (for "fall") silently sent nobody to any fall before 2026-12-04."""
    with pytest.raises(ValueError, match="DISPATCH_AUTO_TYPES: no alert has type falls"):
        Settings(dispatch_auto_types=["sos", "falls"])
    assert Settings(dispatch_auto_types=["sos", "fall", "long_lie"]).dispatch_auto_types
