"""Scenarios parse and validate; the ground truth is exactly what the stream shows."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from simulators.cli import simulate_main
from simulators.fleet import Fleet
from simulators.location import distance_m
from simulators.scenario import EPISODE_TYPES, Scenario, ScenarioError
from simulators.scenario_params import PARAMS

START = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Rugao
SCENARIOS = sorted(Path("simulators/scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = Scenario.load(path)
    assert scenario.injections


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"events": [{"type": "meteor", "at": 1}]}, "type"),
        ({"events": [{"type": "fall"}]}, "exactly one"),
        ({"events": [{"type": "fall", "at": 1, "rate_per_day": 1}]}, "exactly one"),
        ({"events": [{"type": "fall", "at": "soon"}]}, "HH:MM:SS"),
        ({"events": [{"type": "fall", "at": 1, "bands": -1}]}, "bands"),
        ({"events": [{"type": "fall", "at": 1, "whom": 1}]}, "unknown keys"),
        ({"events": [{"type": "fall", "at": 1, "duration_s": [5, 1]}]}, "min, max"),
        ({"background": {"nonsense": 1}}, "background"),
    ],
)
def test_bad_scenarios_are_refused_with_context(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ScenarioError, match=match):
        Scenario.from_dict(data, where="test.yaml")


def test_a_scenario_file_that_is_not_yaml_is_refused_with_where(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("events: [{type: fall, at: 1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not YAML: .* line 2, column 1"):
        Scenario.load(path)


Stream = dict[str, list[tuple[int, str, Any]]]


def _run(tmp_path: Path) -> tuple[Any, list[dict[str, Any]], Stream]:
    # a fleet big enough to hold a resident with dementia for the wandering episode
    fleet = Fleet.create(seed=21, bands=30, prefix="S")
    scenario = Scenario.load("simulators/scenarios/emergencies.yaml")
    sim = fleet.simulate(duration_s=4 * 3600, start=START, scenario=scenario)
    assert sim.write_truth(tmp_path / "truth.jsonl") == len(sim.episodes)
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    by_device: dict[str, list[tuple[int, str, Any]]] = defaultdict(list)
    for m in sim.messages():
        by_device[m.device_id].append((m.t_ms, m.topic.rsplit("/", 1)[1],
                                       msgspec.json.decode(m.payload)))  # fmt: skip
    return sim, truth, by_device


def _ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def test_ground_truth_matches_the_published_stream(tmp_path: Path) -> None:
    sim, truth, by_device = _run(tmp_path)
    types = {t["type"] for t in truth}
    assert types >= {"fall", "sos", "adl", "tachycardia", "bradycardia", "hypoxaemia", "fever",
                     "hypertensive_crisis", "wandering", "inactivity", "device_offline",
                     "low_battery", "band_removed"}  # fmt: skip
    profiles = {p.device_id: p for p in sim.fleet.profiles}
    for t in truth:
        assert t["resident_ref"] == f"sim:{t['device_id']}"
        start, end = _ms(t["start"]), _ms(t["end"])
        assert start <= end
        msgs = by_device[t["device_id"]]
        during = [(ts, ch, d) for ts, ch, d in msgs if start <= ts < max(end, start + 1)]
        tele = [d for _, ch, d in during if ch == "telemetry" and d.get("worn")]
        near = [(ch, d) for ts, ch, d in msgs if start <= ts < start + 60_000]
        kind = t["type"]
        if kind in ("fall", "adl"):
            # a fall, and an activity with an impact >= 2 g, upload an impact window (its
            # first part at once, then the whole); other activities a motion window
            triggers = {"impact"} if kind == "fall" else {"impact", "motion"}
            windows = [d for ch, d in near if ch == "imu" and d["trigger"] in triggers]
            assert windows, t
            if kind == "fall":
                sizes = [len(d["t_ms"]) for d in windows]
                assert len(sizes) >= 2  # the early part, then the whole window
                assert min(sizes) < max(sizes)
        elif kind == "sos":
            assert any(ch == "events" and d["type"] == "sos" for ch, d in near), t
        elif kind == "tachycardia":
            assert tele
            assert min(d["hr"] for d in tele if "hr" in d) > 100
        elif kind == "bradycardia":
            assert tele
            assert max(d["hr"] for d in tele if "hr" in d) < 60
        elif kind == "hypoxaemia":
            assert max(d["spo2"] for d in tele if "spo2" in d) < 91
        elif kind == "hypertensive_crisis":
            assert min(d["bp_sys"] for d in tele if "bp_sys" in d) > 165
        elif kind == "wandering":
            p = profiles[t["device_id"]]
            far = max(distance_m(p.home_lat, p.home_lon, d["loc"]["lat"], d["loc"]["lon"])
                      for d in tele if "loc" in d)  # fmt: skip
            assert far > 300
        elif kind == "inactivity":
            steps = {d["steps"] for d in tele}
            assert len(steps) == 1
        elif kind == "device_offline":
            assert not [ts for ts, _, _ in msgs if start < ts < end]
            assert any(ts == end for ts, _, _ in msgs)
        elif kind == "low_battery":
            assert any(ch == "events" and d["type"] == "low_battery" for ch, d in near)
        elif kind == "band_removed":
            worn = [d["worn"] for ts, ch, d in during if ch == "telemetry"]
            assert worn
            assert not any(worn)


def test_rate_based_injections_are_deterministic_and_in_their_hours() -> None:
    scenario = Scenario.from_dict(
        {"name": "r", "events": [{"type": "wandering", "rate_per_day": 0.5},
                                 {"type": "adl", "rate_per_day": 4}]}
    )  # fmt: skip
    fleet = Fleet.create(seed=3, bands=20)
    a = fleet.simulate(duration_s=7 * 86_400, start=START, scenario=scenario).episodes
    b = fleet.simulate(duration_s=7 * 86_400, start=START, scenario=scenario).episodes
    assert a == b
    assert len(a) > 100
    for e in a:
        local_h = ((e.start_ms / 3_600_000) + 8) % 24
        lo, hi = (0.5, 4.5) if e.type == "wandering" else (7.0, 21.0)
        assert lo <= local_h <= hi
    assert [e.id for e in a] == list(range(1, len(a) + 1))


def test_truth_carries_registry_ids_once_registered(tmp_path: Path) -> None:
    fleet = Fleet.create(seed=1, bands=3, prefix="R")
    fleet.resident_ids.update({"R-000000": 11, "R-000001": 12, "R-000002": 13})
    scenario = Scenario.from_dict({"events": [{"type": "sos", "at": 5, "bands": "all"}]})
    sim = fleet.simulate(duration_s=60, start=START, scenario=scenario)
    sim.write_truth(tmp_path / "t.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert sorted(r["resident_id"] for r in rows) == [11, 12, 13]
    assert {r["start"] for r in rows} == {"2025-03-01T01:00:05.000Z"}


def test_where_living_alone_narrows_the_residents() -> None:
    fleet = Fleet.create(seed=3, bands=40, prefix="LA")
    scenario = Scenario.from_dict({"name": "t", "events": [
        {"type": "inactivity", "at": 60, "bands": "all", "where": {"living_alone": True}},
    ]})  # fmt: skip
    sim = fleet.simulate(duration_s=3600, start=datetime(2025, 3, 1, tzinfo=UTC), scenario=scenario)
    alone = {p.index for p in fleet.profiles if p.living_alone}
    assert alone
    assert {e.index for e in sim.episodes} == alone
    with pytest.raises(ScenarioError, match="living_alone"):
        Scenario.from_dict({"events": [{"type": "sos", "at": 1, "where": {"living_alone": "y"}}]})


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"direction": "upward"}, r"params\.direction: 'upward' is not one of"),
        ({"origin": "sofa"}, r"params\.origin: 'sofa' is not one of"),
        ({"lond_lie": True}, r"params: unknown \['lond_lie'\] \(fall takes"),
        ({"long_lie": "yes"}, r"params\.long_lie: 'yes' is not true or false"),
    ],
)
def test_fall_params_are_checked_at_load(params: dict[str, Any], match: str) -> None:
    data = {"events": [{"type": "fall", "at": 60, "bands": 1, "params": params}]}
    with pytest.raises(ScenarioError, match=r"^test\.yaml: events\[0\]: " + match):
        Scenario.from_dict(data, where="test.yaml")


@pytest.mark.parametrize(
    ("event", "match"),
    [
        ({"type": "adl", "params": {"kind": "dancing"}}, r"params\.kind"),
        ({"type": "sos", "params": {"cancel": 1.5}}, r"params\.cancel: 1\.5 is not a number"),
        ({"type": "tachycardia", "params": {"hr": 60}}, r"params\.hr: 60"),
        ({"type": "tachycardia", "params": {"spo2": 80}}, r"unknown \['spo2'\]"),
        ({"type": "hypoxaemia", "params": {"spo2": "low"}}, r"params\.spo2"),
        ({"type": "device_offline", "params": {"x": 1}}, r"takes no params"),
        ({"type": "fall", "params": ["long_lie"]}, r"params is a mapping"),
        ({"type": "fall", "bands": [0, "one"]}, r"fleet indices are whole numbers"),
        ({"type": "fall", "bands": [-1]}, r"fleet indices are whole numbers"),
        ({"type": "fall", "where": {"conditons": ["dementia"]}}, r"where: unknown keys"),
        ({"type": "fall", "where": {"conditions": ["gout"]}}, r"where\.conditions \['gout'\]"),
        ({"type": "fall", "duration_s": ["a", 5]}, r"min, max"),
        ({"type": "fall", "at": -5}, r"seconds >= 0"),
    ],
)
def test_each_episode_kinds_params_and_targets_are_checked(
    event: dict[str, Any], match: str
) -> None:
    with pytest.raises(ScenarioError, match=r"^test\.yaml: events\[0\]: .*" + match):
        Scenario.from_dict({"events": [{"at": 60, **event}]}, where="test.yaml")


def test_every_episode_type_says_what_params_it_takes() -> None:
    assert set(PARAMS) == EPISODE_TYPES


def test_the_params_a_scenario_may_set_are_the_ones_episodes_are_given() -> None:
    """Every parameter the planner draws is one a scenario may set, and vice versa."""
    fleet = Fleet.create(seed=2, bands=40, prefix="P")
    events = [{"type": kind, "at": 60, "bands": "all"} for kind in sorted(EPISODE_TYPES)]
    sim = fleet.simulate(
        duration_s=120, start=START, scenario=Scenario.from_dict({"events": events})
    )
    drawn: dict[str, set[str]] = defaultdict(set)
    for e in sim.episodes:
        drawn[e.type] |= set(e.params)
    for kind in EPISODE_TYPES:
        assert drawn[kind] == set(PARAMS[kind]) - {"cancel"}, kind  # sos: cancel -> cancelled


def test_a_scenario_with_an_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(ScenarioError, match=r"unknown keys \['event'\]"):
        Scenario.from_dict({"event": [{"type": "fall", "at": 1}]}, where="test.yaml")


def test_fleet_indices_beyond_the_fleet_are_refused_not_dropped() -> None:
    scenario = Scenario.from_dict(
        {"events": [{"type": "sos", "at": 5}, {"type": "fall", "at": 60, "bands": [0, 9]}]},
        where="s.yaml",
    )
    fleet = Fleet.create(seed=1, bands=2, prefix="B")
    with pytest.raises(ScenarioError, match=r"^s\.yaml: events\[1\]: bands \[9\]: the fleet has 2"):
        scenario.check_fleet(len(fleet))
    with pytest.raises(ScenarioError, match=r"bands \[9\]"):  # and programmatic use, too
        fleet.simulate(duration_s=120, start=START, scenario=scenario)
    assert len(Fleet.create(seed=1, bands=10, prefix="B").simulate(
        duration_s=120, start=START, scenario=scenario).episodes) == 3  # fmt: skip


def test_a_missing_scenario_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"nowhere\.yaml: cannot read the scenario"):
        Scenario.load(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nevents:\n  - {type: fall, at: 60, bands: 1, params: {direction: upward}}\n",
         "params.direction: 'upward' is not one of"),
        ("name: x\nevents:\n  - {type: fall, at: 60, bands: 1, params: {origin: sofa}}\n",
         "params.origin: 'sofa'"),
        ("name: x\nevents:\n  - {type: fall, at: 60, bands: 1, params: {lond_lie: true}}\n",
         "unknown ['lond_lie']"),
        ("name: x\nevents:\n  - {type: fall, at: 60, bands: [9]}\n",
         "events[0]: bands [9]: the fleet has 2 band(s)"),
    ],
)  # fmt: skip
def test_the_command_line_exits_2_naming_the_file_for_a_bad_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    argv = ["--bands", "2", "--duration", "120", "--start", "2025-03-01T00:00:00Z",
            "--scenario", str(path), "--output", str(tmp_path / "out.jsonl")]  # fmt: skip
    assert simulate_main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err
    assert message in err
    assert not (tmp_path / "out.jsonl").exists()


def test_the_command_line_exits_2_for_a_missing_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--bands", "2", "--duration", "60", "--scenario", str(tmp_path / "gone.yaml"),
            "--output", str(tmp_path / "out.jsonl")]  # fmt: skip
    assert simulate_main(argv) == 2
    assert "gone.yaml: cannot read the scenario" in capsys.readouterr().err
