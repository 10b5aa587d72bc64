"""`eldercare register FILE` through the real command: what it registers, and the clear
error (no traceback, nothing registered) for a file that is not a registration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eldercare.registry_cli import registration
from tests.support import scalar

RESIDENT = {
    "name": "王秀英",
    "birth_year": 1941,
    "sex": "female",
    "district": "如城街道",
    "living_alone": True,
    "conditions": ["dementia"],
    "emergency_contacts": [{"name": "王强", "relation": "son", "phone": "13800000000"}],
    "wristband": {"device_id": "cli-band-1", "model": "W1", "interval_s": 30},
}


def eldercare(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ELDERCARE_DATABASE_URL": db_url, "ELDERCARE_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "eldercare.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_registration_file_registers_residents_and_their_bands(
    db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "residents.json"
    file.write_text(json.dumps({"residents": [RESIDENT]}, ensure_ascii=False), encoding="utf-8")
    done = eldercare(db_url, "register", str(file))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["registered"] == 1
    (cred,) = out["credentials"]
    assert cred["device_id"] == "cli-band-1"
    assert len(cred["mqtt_password"]) >= 16
    listed = eldercare(db_url, "wristband", "list")
    (band,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (band["device_id"], band["expected_interval_s"]) == ("cli-band-1", 30)


def _with(**change: object) -> dict[str, object]:
    return {"residents": [{**RESIDENT, **change}]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not JSON"),
        (json.dumps([RESIDENT]), "file: Input should be a valid dictionary"),
        (json.dumps({"residents": [{"name": "x"}]}), "residents.0.birth_year: Field required"),
        (json.dumps(_with(living_alon=True)), "residents.0.living_alon: Extra inputs"),
        (json.dumps(_with(birth_year="old")), "residents.0.birth_year: Input should be"),
        (json.dumps(_with(home_lat=123.0)), "residents.0.home_lat: Input should be less"),
        (json.dumps(_with(conditions=["flu"])), "unknown conditions"),
        (json.dumps(_with(wristband={"model": "W1"})), "wristband.device_id: Field required"),
    ],
)
def test_a_file_that_is_not_a_registration_is_refused_with_the_reason(
    db_url: str, tmp_path: Path, content: str | None, message: str
) -> None:
    file = tmp_path / "residents.json"
    if content is not None:
        file.write_text(content, encoding="utf-8")
    done = eldercare(db_url, "register", str(file))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_refused_file_registers_nobody(db_url: str, tmp_path: Path) -> None:
    before = await scalar(db_url, "SELECT count(*) FROM residents")
    file = tmp_path / "residents.json"
    good = {**RESIDENT, "wristband": {"device_id": "cli-band-2"}}
    file.write_text(json.dumps({"residents": [good, {"name": "x"}]}), encoding="utf-8")
    done = eldercare(db_url, "register", str(file))
    assert done.returncode == 2
    assert await scalar(db_url, "SELECT count(*) FROM residents") == before


def test_a_database_that_cannot_be_reached_is_one_clear_line() -> None:
    done = eldercare("postgresql://postgres@127.0.0.1:1/nowhere", "wristband", "list")
    assert done.returncode == 2
    assert done.stderr.startswith("eldercare: database: connection failed")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("ref", "second", "message"),
    [
        (None, {}, "wristband cli-dup-1 or its resident is already paired"),
        (
            "ref-1",
            {"wristband": {"device_id": "cli-dup-2"}},
            "already registered: Key (external_ref)",
        ),
    ],
)
def test_registering_again_is_refused_with_the_reason(
    db_url: str, tmp_path: Path, ref: str | None, second: dict[str, object], message: str
) -> None:
    first = {**RESIDENT, "external_ref": ref, "wristband": {"device_id": "cli-dup-1"}}
    file = tmp_path / "residents.json"
    file.write_text(json.dumps({"residents": [first]}), encoding="utf-8")
    assert eldercare(db_url, "register", str(file)).returncode == 0
    file.write_text(json.dumps({"residents": [{**first, **second}]}), encoding="utf-8")
    done = eldercare(db_url, "register", str(file))
    assert done.returncode == 2
    assert message in done.stderr
    assert "nothing was registered" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_readmes_example_file_is_a_valid_registration() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```json\n", 1)[1].split("```", 1)[0]
    (resident,) = registration(json.loads(example)).residents
    assert resident.wristband is not None
    assert resident.wristband.device_id == "band-0001"
