"""A bad recording is refused naming its file and line, before anything is replayed.

Until 2026-12-04 a line without ``payload`` ended `eldercare simulate --replay` in a
KeyError traceback (exit 1) after it had connected and published the lines before it.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from simulators.cli import simulate_main
from simulators.record import Recorded, read_recording

GOOD = Recorded(0.5, "eldercare/v1/devices/X1/telemetry", b'{"x":1}', 1, False).line()
PAYLOAD = base64.b64encode(b"{}").decode()


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"t": 0, "topic": "a/b"}', r"missing \['payload'\]"),
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (f'{{"t": "soon", "topic": "a/b", "payload": "{PAYLOAD}"}}', "^t: 'soon' is not"),
        (f'{{"t": -1, "topic": "a/b", "payload": "{PAYLOAD}"}}', "t: -1"),
        (f'{{"t": 0, "topic": "", "payload": "{PAYLOAD}"}}', "topic"),
        (f'{{"t": 0, "topic": "a/b", "payload": "{PAYLOAD}", "qos": 3}}', "qos: 3"),
        (f'{{"t": 0, "topic": "a/b", "payload": "{PAYLOAD}", "retain": "no"}}', "retain"),
        ('{"t": 0, "topic": "a/b", "payload": "%%%"}', "payload: not base64"),
        ('{"t": 0, "topic": "a/b", "payload": 7}', "payload: not base64"),
    ],
)
def test_a_bad_line_says_what_is_wrong(line: str, match: str) -> None:
    # simulators.record.RecordingError, a ValueError (the command line's exit 2)
    with pytest.raises(ValueError, match=match):
        Recorded.from_line(line)


def test_a_good_line_round_trips() -> None:
    rec = Recorded.from_line(GOOD)
    assert rec == Recorded(0.5, "eldercare/v1/devices/X1/telemetry", b'{"x":1}', 1, False)
    assert rec.line() == GOOD


def test_read_recording_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(f'{GOOD}\n\n{{"t": 0, "topic": "a/b"}}\n', encoding="utf-8")
    where = re.escape(str(path))
    with pytest.raises(ValueError, match=rf"^{where}: line 3: missing \['payload'\]$"):
        list(read_recording(path))


def test_replay_of_a_bad_recording_exits_2_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(f'{GOOD}\n{{"t": 0, "topic": "eldercare/v1/devices/X1/telemetry"}}\n')
    # nothing listens on port 1: had the replay connected first, it would fail with 1
    assert simulate_main(["--replay", str(path), "--mqtt-url", "mqtt://127.0.0.1:1"]) == 2
    assert f"{path}: line 2: missing ['payload']" in capsys.readouterr().err


def test_replay_of_a_missing_recording_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gone.jsonl"
    assert simulate_main(["--replay", str(path), "--mqtt-url", "mqtt://127.0.0.1:1"]) == 2
    assert f"{path}: cannot read the recording" in capsys.readouterr().err
