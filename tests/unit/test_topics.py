from __future__ import annotations

import pytest

from eldercare.topics import ALERTS, Channel, device_topic, parse_worker_topic, worker_topic


def test_a_worker_topic_parses_back_to_its_worker_and_channel() -> None:
    assert parse_worker_topic(worker_topic("W-17", "answers")) == ("W-17", "answers")
    assert parse_worker_topic(worker_topic("W-17", "location")) == ("W-17", "location")


@pytest.mark.parametrize(
    "topic",
    [ALERTS, device_topic("wb-1", Channel.IMU), "other/v1/workers/W-17/answers",
     "eldercare/v1/workers/W-17", "eldercare/v1/workers/W-17/answers/extra"],
)  # fmt: skip
def test_anything_else_is_not_a_worker_topic(topic: str) -> None:
    assert parse_worker_topic(topic) is None
