"""The deployment's broker lets each service publish what its code publishes.

A private Mosquitto runs the shipped ``deploy/mosquitto/acl`` with a password
file made as ``deploy/mosquitto/README.md`` says; each service user publishes
QoS 1 (MQTT 5) on the topics its code publishes, and the broker must accept
each. Mosquitto refuses a publish the ACL denies with a PUBACK reason code that
aiomqtt ignores: until 2026-12-04 the dispatch service's alert moves (an alert
dispatched, resolved) were dropped that way, and the API's live updates never
had them. Every service in docker-compose.yml must also be in the password
steps of the README and have a section of its own in the ACL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from eldercare.topics import ALERTS, DISPATCH, INGESTED, Channel, device_topic, worker_topic
from tests.conftest import REPO, Broker, running_broker
from tests.unit.test_compose import environment, load_compose

MOSQUITTO_DIR = REPO / "deploy" / "mosquitto"
# what each service's code publishes (ingest: ingest/handoff.py and its commands;
# alerts: alerts/publisher.py; dispatch: dispatch/outbox.py; the API: an operator's
# alert change, api/routes/alerts.py)
PUBLISHES = {
    "eldercare-ingest": [INGESTED, device_topic("wb-1", Channel.CMD)],
    "eldercare-alerts": [ALERTS],
    "eldercare-dispatch": [ALERTS, DISPATCH, worker_topic("w-1", "offers")],
    "eldercare-api": [ALERTS],
}
PASSWORD = "test-only-password"


def compose_users() -> set[str]:
    users = set()
    for service in load_compose()["services"].values():
        url = environment(service).get("ELDERCARE_MQTT_URL", "")
        users |= set(re.findall(r"mqtt://([^:@/]+):", url))
    return users


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    users = dict.fromkeys(PUBLISHES, PASSWORD)
    with running_broker(tmp_path_factory.mktemp("acl-broker"), users=users,
                        acl=MOSQUITTO_DIR / "acl") as b:  # fmt: skip
        yield b


def publish_reason(port: int, user: str, topic: str) -> ReasonCode:
    """The broker's PUBACK reason for one QoS 1 publish as ``user``."""
    done = threading.Event()
    reasons: list[ReasonCode] = []

    def on_publish(
        _c: mqtt.Client, _u: object, _mid: int, reason: ReasonCode, _p: Properties
    ) -> None:
        reasons.append(reason)
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, PASSWORD)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, b"{}", qos=1)
        assert done.wait(10), f"no PUBACK for {user} on {topic}"
    finally:
        client.loop_stop()
        client.disconnect()
    return reasons[0]


@pytest.mark.parametrize(
    ("user", "topic"), [(u, t) for u, topics in PUBLISHES.items() for t in topics]
)
def test_each_service_may_publish_what_its_code_publishes(
    acl_broker: Broker, user: str, topic: str
) -> None:
    reason = publish_reason(acl_broker.port, user, topic)
    assert not reason.is_failure, str(reason)  # "No matching subscribers" is a success


def test_the_acl_is_enforced(acl_broker: Broker) -> None:
    """The check above could pass on a broker that allows everything."""
    assert str(publish_reason(acl_broker.port, "eldercare-alerts", DISPATCH)) == "Not authorized"


def test_every_compose_service_user_has_a_password_step_and_an_acl_section() -> None:
    users = compose_users()
    assert users == set(PUBLISHES), "a service user this test does not know"
    readme = (MOSQUITTO_DIR / "README.md").read_text(encoding="utf-8")
    acl = (MOSQUITTO_DIR / "acl").read_text(encoding="utf-8")
    for user in users:
        assert re.search(rf"mosquitto_passwd .*services\.passwd {user} ", readme), user
        assert re.search(rf"^user {user}$", acl, re.MULTILINE), user


def test_the_image_serves_the_web_pages() -> None:
    """The Dockerfile copies web/ and points the API at the copy: the installed package
    has no web/, and before 2026-12-04 the image served no console, family or worker page."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    copied = re.search(r"^COPY web/ (\S+?)/?$", text, re.MULTILINE)
    assert copied, "the Dockerfile does not COPY web/"
    env = re.search(r"ELDERCARE_API_WEB_DIR=(\S+)", text)
    assert env
    assert env.group(1).rstrip("/") == copied.group(1).rstrip("/")
    assert (Path(REPO) / "web" / "console").is_dir()
