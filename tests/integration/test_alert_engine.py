"""The live alert engine on the real broker and database: raise, repeat, cancel, restart,
operator transitions, and published alert events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import numpy as np
import psycopg
import pytest

from alerts.detectors import AlertRaised, AlertType, Severity
from alerts.engine import AlertEngine
from alerts.falls import load_model
from alerts.lifecycle import InvalidTransition, Outcome
from alerts.store import acknowledge, apply_events, dispatch, false_alarm, resolve
from eldercare.protocol import DeviceEvent, EventType, ImuWindow, StatusReport, Telemetry, encode
from eldercare.settings import Settings
from eldercare.topics import ALERTS, Channel, device_topic
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.conftest import Broker
from tests.support import (
    NOW_MS,
    Clock,
    eventually,
    ingest_settings,
    publish_all,
    register_bands,
    rows,
    running_ingest,
    scalar,
)
from tests.unit.test_falls_signal import batch_stamped

MODEL = load_model()


@contextlib.asynccontextmanager
async def running_engine(
    settings: Settings, *, consume: bool = False
) -> AsyncIterator[AlertEngine]:
    engine = AlertEngine(settings, fall_model=MODEL)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop, consume=consume))
    ready = asyncio.create_task((engine.subscribed if consume else engine.ready).wait())
    done, _ = await asyncio.wait({task, ready}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready in done, "the alert engine did not start"
    try:
        yield engine
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@contextlib.asynccontextmanager
async def alert_messages(broker: Broker) -> AsyncIterator[list[dict[str, Any]]]:
    """Collect what the engine publishes on the internal alerts topic."""
    got: list[dict[str, Any]] = []
    subscriber = f"alerts-sub-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=subscriber) as client:
        await client.subscribe(ALERTS, qos=1)

        async def collect() -> None:
            async for message in client.messages:  # endless: each message must land at once
                if isinstance(message.payload, bytes):
                    got.append(json.loads(message.payload))  # noqa: PERF401

        reader = asyncio.create_task(collect())
        try:
            yield got
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def event(dev: str, seq: int, kind: EventType, ts: int) -> tuple[str, bytes]:
    msg = DeviceEvent(device_id=dev, seq=seq, ts=ts, type=kind)
    return device_topic(dev, Channel.EVENTS), encode(msg)


def fall_window(dev: str, seq: int, ts: int) -> tuple[str, bytes]:
    """An impact and a change of orientation the shipped model scores as a fall."""
    t = np.arange(0.0, 12.0, 1 / 50)
    rng = np.random.default_rng(0)
    acc = np.where((t < 5.0)[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    acc[(t > 4.5) & (t < 4.95)] *= 0.35
    acc = acc + (4.0 * np.exp(-0.5 * ((t - 5.0) / 0.06) ** 2))[:, None] * [0.6, 0.0, 0.8]
    acc = np.round(acc + rng.normal(0.0, 0.02, acc.shape), 4)
    window = ImuWindow(device_id=dev, seq=seq, ts=ts, t_ms=[round(float(x) * 1000) for x in t],
                       ax=acc[:, 0].tolist(), ay=acc[:, 1].tolist(), az=acc[:, 2].tolist(),
                       trigger="impact")  # fmt: skip
    return device_topic(dev, Channel.IMU), encode(window)


async def alerts_of(db_url: str, resident: int) -> list[tuple[Any, ...]]:
    return await rows(db_url, "SELECT id, type, severity, state, repeat_count, outcome, closed_at"
                      " FROM alerts WHERE resident_id = %s ORDER BY id", resident)  # fmt: skip


async def test_an_sos_is_one_open_critical_alert_and_a_second_press_updates_it(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-sos"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    async with (
        alert_messages(broker) as published,
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [event(dev, 1, EventType.SOS, now)])

        async def raised() -> bool:
            return len(await alerts_of(db_url, resident)) == 1

        await eventually(raised)
        ((alert_id, kind, severity, state, repeats, _, _),) = await alerts_of(db_url, resident)
        assert (kind, severity, state, repeats) == ("sos", "critical", "open", 1)
        transitions = await rows(db_url, "SELECT from_state, to_state, actor FROM"
                                 " alert_transitions WHERE alert_id = %s", alert_id)  # fmt: skip
        assert transitions == [(None, "open", "engine")]

        publish_all(broker.url, [event(dev, 2, EventType.SOS, now + 3000)])

        async def repeated() -> bool:
            return [a[4] for a in await alerts_of(db_url, resident)] == [2]

        await eventually(repeated)
        detail = await scalar(db_url, "SELECT detail FROM alerts WHERE id = %s", alert_id)
        assert isinstance(detail, dict)
        assert detail["presses"] == 2

        async def heard() -> bool:
            mine = [m for m in published if m["resident_id"] == resident]
            return [m["kind"] for m in mine] == ["raised", "updated"]

        await eventually(heard)  # persisted first, then published
        assert {m["alert_id"] for m in published if m["resident_id"] == resident} == {alert_id}


async def test_a_detected_fall_cancelled_by_the_wearer_closes_as_a_false_alarm(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-fall"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [fall_window(dev, 1, now - 13_000)])

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("fall", "critical", "open")
            ]

        await eventually(raised)
        publish_all(broker.url, [event(dev, 2, EventType.IM_OK, now)])

        async def cancelled() -> bool:
            return [a[3] for a in await alerts_of(db_url, resident)] == ["false_alarm"]

        await eventually(cancelled)
    ((alert_id, _, _, _, _, outcome, closed_at),) = await alerts_of(db_url, resident)
    assert outcome == "false"
    assert closed_at is not None
    detail = await scalar(db_url, "SELECT detail FROM alerts WHERE id = %s", alert_id)
    assert isinstance(detail, dict)
    assert detail["sources"] == ["platform"]
    assert detail["cleared"]["reason"] == "cancelled_by_wearer"
    transitions = await rows(db_url, "SELECT from_state, to_state, actor, note"
                             " FROM alert_transitions WHERE alert_id = %s ORDER BY id",
                             alert_id)  # fmt: skip
    assert transitions == [
        (None, "open", "engine", "raised"),
        ("open", "false_alarm", "engine", "cancelled_by_wearer"),
    ]


def impact_windows(
    dev: str, ts: int, *, back_to_start: bool, batched: bool = False
) -> list[tuple[str, bytes]]:
    """A band's two impact uploads (docs/protocol.md): the early part (to 0.8 s after a
    5 g impact that turns the forearm), then the whole 10 s window: lying still, or
    (``back_to_start``) the arm back where it was and moving. ``batched``: the band
    stamps each 0.1 s batch of samples with one time, when it hands the batch over."""
    rng = np.random.default_rng(1)
    t = np.arange(0.0, 10.0, 1 / 50)
    before, after = np.array([-0.94, 0.12, 0.32]), np.array([0.15, -0.25, 0.95])
    acc = np.where((t < 2.5)[:, None], before, after)
    acc = acc + 4.0 * np.exp(-0.5 * ((t - 2.5) / 0.05) ** 2)[:, None] * after
    if back_to_start:
        moving = t > 3.3
        acc[moving] = before + 0.6 * np.sin(2 * np.pi * 2.0 * t[moving])[:, None] * [1, 0.3, 0.2]
    acc = np.round(acc + rng.normal(0.0, 0.01, acc.shape), 4)
    stamps = batch_stamped(t, 0.1, apart_ms=0) if batched else t
    out = []
    for seq, keep in ((1, t <= 3.3), (2, t >= 0.0)):
        t_ms = [round(float(x) * 1000) for x in stamps[keep]]
        w = ImuWindow(device_id=dev, seq=seq, ts=ts, t_ms=t_ms,
                      ax=acc[keep, 0].tolist(), ay=acc[keep, 1].tolist(),
                      az=acc[keep, 2].tolist(), trigger="impact")  # fmt: skip
        out.append((device_topic(dev, Channel.IMU), encode(w)))
    return out


@pytest.mark.parametrize("batched", [False, True], ids=["stamped_per_sample", "batch_stamped"])
async def test_an_early_impact_window_raises_one_fall_the_whole_window_confirms_or_retracts(
    db_url: str, broker: Broker, topic_prefix: str, batched: bool
) -> None:
    fell, knocked = f"{topic_prefix}-fe", f"{topic_prefix}-kn"
    residents = await register_bands(db_url, [fell, knocked])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        early = [impact_windows(d, now - 3_000, back_to_start=d == knocked, batched=batched)[0]
                 for d in (fell, knocked)]  # fmt: skip
        publish_all(broker.url, early)

        async def suspected() -> bool:
            got = [await alerts_of(db_url, r) for r in residents]
            return all([a[1:4] for a in g] == [("fall", "critical", "open")] for g in got)

        await eventually(suspected)  # from the early part alone
        sources = await rows(db_url, "SELECT detail->'sources' FROM alerts ORDER BY id")
        assert sources == [(["screen"],), (["screen"],)]
        whole = [impact_windows(d, now - 3_000, back_to_start=d == knocked, batched=batched)[1]
                 for d in (fell, knocked)]  # fmt: skip
        publish_all(broker.url, whole)

        async def settled() -> bool:
            states = [[a[3] for a in await alerts_of(db_url, r)] for r in residents]
            return states == [["open"], ["false_alarm"]]

        await eventually(settled)
    fall_detail = await scalar(db_url, "SELECT detail FROM alerts WHERE resident_id = %s",
                               residents[0])  # fmt: skip
    assert isinstance(fall_detail, dict)
    assert fall_detail["sources"] == ["platform", "screen"]  # confirmed: still one alert
    knock_detail = await scalar(db_url, "SELECT detail FROM alerts WHERE resident_id = %s",
                                residents[1])  # fmt: skip
    assert isinstance(knock_detail, dict)
    assert knock_detail["cleared"]["reason"] == "not_confirmed"


async def test_after_a_restart_the_open_alert_is_updated_not_raised_again(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-rs"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [event(dev, 1, EventType.SOS, now)])

        async def raised() -> bool:
            return len(await alerts_of(db_url, resident)) == 1

        await eventually(raised)

    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        assert AlertType.SOS in engine.states[resident].open_alerts()  # seeded from the database
        publish_all(broker.url, [event(dev, 2, EventType.SOS, now + 2000)])

        async def updated() -> bool:
            return [a[3:5] for a in await alerts_of(db_url, resident)] == [("open", 2)]

        await eventually(updated)
        detail = await scalar(db_url, "SELECT detail FROM alerts WHERE resident_id = %s", resident)
        assert isinstance(detail, dict)
        assert detail["presses"] == 2  # the press count carried over the restart


async def test_a_raise_of_an_open_alert_from_anywhere_is_an_update(
    db_url: str, topic_prefix: str
) -> None:
    """Two engines (or one without seeded state) raising at once still make one alert."""
    (resident,) = await register_bands(db_url, [f"{topic_prefix}-x"])
    at = datetime.now(UTC)
    raise_ = AlertRaised(resident, None, AlertType.VITAL_HR_HIGH, Severity.HIGH, at, {"hr": 1})

    async def one_engine() -> None:
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await apply_events(conn, [raise_])

    await asyncio.gather(*(one_engine() for _ in range(4)))
    assert await rows(db_url, "SELECT state, repeat_count FROM alerts") == [("open", 4)]
    assert await scalar(db_url, "SELECT count(*) FROM alert_transitions") == 1


async def test_operator_transitions_are_recorded_and_an_invalid_one_is_refused(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-op"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    t0 = datetime.now(UTC)
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [event(dev, 1, EventType.SOS, now)])

        async def raised() -> bool:
            return len(await alerts_of(db_url, resident)) == 1

        await eventually(raised)
        ((alert_id, *_),) = await alerts_of(db_url, resident)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await acknowledge(conn, alert_id, actor="operator:7", at=t0 + timedelta(seconds=1))
            await dispatch(conn, alert_id, actor="operator:7", at=t0 + timedelta(seconds=2),
                           note="worker 12 on the way")  # fmt: skip
            done = await resolve(conn, alert_id, outcome=Outcome.ACTIONABLE,
                                 actor="operator:9", at=t0 + timedelta(seconds=3))  # fmt: skip
            assert (done.alert.state, done.alert.outcome) == ("resolved", "actionable")
            with pytest.raises(InvalidTransition, match="cannot resolve alert"):
                await resolve(conn, alert_id, outcome=Outcome.FALSE, actor="operator:9",
                              at=t0 + timedelta(seconds=4))  # fmt: skip
            with pytest.raises(InvalidTransition):
                await false_alarm(conn, alert_id, actor="operator:9", at=t0)
        transitions = await rows(db_url, "SELECT from_state, to_state, actor, at"
                                 " FROM alert_transitions WHERE alert_id = %s ORDER BY id",
                                 alert_id)  # fmt: skip
        assert [t[:3] for t in transitions] == [
            (None, "open", "engine"),
            ("open", "acknowledged", "operator:7"),
            ("acknowledged", "dispatched", "operator:7"),
            ("dispatched", "resolved", "operator:9"),
        ]
        assert transitions[-1][3] == t0 + timedelta(seconds=3)
        assert [a[3:6] for a in await alerts_of(db_url, resident)] == [
            ("resolved", 1, "actionable")
        ]
        # the engine learns of the close; the next press is a new alert, not an update
        await engine.refresh()
        publish_all(broker.url, [event(dev, 2, EventType.SOS, now + 60_000)])

        async def raised_again() -> bool:
            return [a[3] for a in await alerts_of(db_url, resident)] == ["resolved", "open"]

        await eventually(raised_again)


async def test_a_standalone_engine_reads_the_ingested_topic(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    dev = f"{topic_prefix}-sa"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    async with running_engine(settings, consume=True), running_ingest(settings):
        publish_all(broker.url, [event(dev, 1, EventType.SOS, NOW_MS())])

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("sos", "critical", "open")
            ]

        await eventually(raised)


async def test_a_standalone_engine_raises_what_was_ingested_while_it_was_down(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """An SOS pressed while the standalone engine restarts: ingest stores and publishes
    it, the broker keeps it on the engine's session, and the engine raises it when it is
    back. Before, the engine's session began afresh and the press was never raised."""
    dev = f"{topic_prefix}-dn"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    async with running_engine(settings, consume=True):
        pass  # the engine's session exists; then it stops
    async with running_ingest(settings) as ingest:
        publish_all(broker.url, [event(dev, 1, EventType.SOS, NOW_MS())])

        async def committed() -> bool:
            return ingest.stats.committed == 1

        await eventually(committed)
    assert await alerts_of(db_url, resident) == []  # nobody was deciding
    async with running_engine(settings, consume=True):

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("sos", "critical", "open")
            ]

        await eventually(raised)


async def test_two_standalone_shards_each_raise_their_own_residents_alerts(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    devs = [f"{topic_prefix}-ss{i}" for i in range(6)]
    residents = await register_bands(db_url, devs)
    settings = ingest_settings(db_url, broker.url, ingest_publish_internal=True)
    shard = [settings.model_copy(update={"alert_shard": f"{k}/2"}) for k in range(2)]
    async with (
        running_engine(shard[0], consume=True) as first,
        running_engine(shard[1], consume=True) as second,
        running_ingest(settings),
    ):
        publish_all(broker.url, [event(d, 1, EventType.SOS, NOW_MS()) for d in devs])

        async def raised() -> bool:
            got = await rows(db_url, "SELECT resident_id, count(*) FROM alerts WHERE type ="
                             " 'sos' AND resident_id = ANY(%s) GROUP BY 1", residents)  # fmt: skip
            return sorted(got) == [(r, 1) for r in sorted(residents)]

        await eventually(raised)
        assert set(first.states) == {r for r in residents if r % 2 == 0}
        assert set(second.states) == {r for r in residents if r % 2 == 1}


async def test_ticks_confirm_a_fall_then_raise_a_long_lie_and_escalate(
    db_url: str, topic_prefix: str
) -> None:
    """Time-driven rules on an injected clock: no waiting, no broker needed."""
    dev = f"{topic_prefix}-tk"
    (resident,) = await register_bands(db_url, [dev])
    t0 = datetime.now(UTC).replace(microsecond=0)
    clock = Clock(t0)
    engine = AlertEngine(ingest_settings(db_url, "mqtt://127.0.0.1:1"), fall_model=MODEL,
                         clock=clock)  # fmt: skip
    try:
        fall = DeviceEvent(device_id=dev, seq=1, ts=int(t0.timestamp() * 1000),
                           type=EventType.FALL)  # fmt: skip
        will = StatusReport(device_id=dev, state="offline")  # no time: the band's last will
        await engine.on_batch(IngestedBatch(events=[Accepted(fall, resident)],
                                            status=[Accepted(will, resident)]))  # fmt: skip
        assert await alerts_of(db_url, resident) == []  # a band-only report is held...
        clock.at = t0 + timedelta(seconds=31)
        await engine.tick()  # ...until nobody said "I'm OK" or walked away for 30 s
        assert [a[1:4] for a in await alerts_of(db_url, resident)] == [("fall", "critical", "open")]
        stage = await scalar(db_url, "SELECT detail->>'stage' FROM alerts WHERE type = 'fall'")
        assert stage == "confirmed"
        clock.at = t0 + timedelta(minutes=3)
        (escalated,) = await engine.escalate()
        assert escalated.alert.detail["escalation"]["target"] == "supervisor"
        assert await engine.escalate() == []  # once per level
        clock.at = t0 + timedelta(minutes=11)
        await engine.tick()
        assert [a[1:4] for a in await alerts_of(db_url, resident)] == [
            ("fall", "critical", "open"),
            ("long_lie", "critical", "open"),
            ("device_offline", "medium", "open"),  # silent for 11 min: right, and not escalated
        ]
        escalated_to = [c.alert.detail["escalation"]["target"] for c in await engine.escalate()]
        assert escalated_to == ["family_contact"]  # the fall; the long lie has only just opened
        notes = await rows(db_url, "SELECT from_state, to_state, actor, note FROM"
                           " alert_transitions WHERE actor = 'escalation' ORDER BY id")  # fmt: skip
        assert notes[0] == ("open", "open", "escalation", "escalated to supervisor (level 1)")
    finally:
        await engine.close()


def steps_report(dev: str, seq: int, ts: int, steps: int) -> tuple[str, bytes]:
    msg = Telemetry(device_id=dev, seq=seq, ts=ts, steps=steps, worn=True)
    return device_topic(dev, Channel.TELEMETRY), encode(msg)


async def knocks_retracted(
    engine: AlertEngine,
    settings: Settings,
    broker: Broker,
    *,
    bands: list[str],
    residents: list[int],
    now: int,
    before: tuple[tuple[str, bytes], ...] = (),
) -> None:
    """Each band's knock: screened by the early window, then not confirmed by the whole
    one; returns once every resident's fall alert is closed as a false alarm."""
    db_url = settings.require_database_url()
    try:
        async with running_ingest(settings, handlers=[engine.on_batch]):
            windows = [w for d in bands
                       for w in impact_windows(d, now - 3_000, back_to_start=True)]  # fmt: skip
            publish_all(broker.url, [*before, *windows])

            async def retracted() -> bool:
                got = [[a[1:4] for a in await alerts_of(db_url, r)] for r in residents]
                return got == [[("fall", "critical", "false_alarm")]] * len(residents)

            await eventually(retracted)
    finally:
        await engine.close()


async def stored_while_down(
    settings: Settings, broker: Broker, bands: list[str], reports: list[tuple[str, bytes]]
) -> None:
    """Publish ``reports`` with no engine running; returns once each band's report
    numbered 3 is in the database."""
    db_url = settings.require_database_url()
    async with running_ingest(settings, handlers=[]):
        publish_all(broker.url, reports)

        async def stored() -> bool:
            n = await scalar(db_url, "SELECT count(*) FROM telemetry WHERE device_id = ANY(%s)"
                             " AND seq = 3", bands)  # fmt: skip
            return n == len(bands)

        await eventually(stored)


async def test_an_unconfirmed_fall_is_watched_across_a_restart_and_stillness_is_a_long_lie(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Two knocks the early window suspects and the whole window does not confirm: both
    fall alerts close (not_confirmed). One wearer then walks while the engine is down; the
    other lies still. The restarted engine raises one long lie, for the still one only."""
    still, walker = f"{topic_prefix}-st", f"{topic_prefix}-wk"
    residents = await register_bands(db_url, [still, walker])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    t0 = datetime.now(UTC)
    first = AlertEngine(settings, fall_model=MODEL, clock=Clock(t0))
    before = tuple(steps_report(d, 1, now - 60_000, 500) for d in (still, walker))
    await knocks_retracted(first, settings, broker, bands=[still, walker], residents=residents,
                           now=now, before=before)  # fmt: skip
    reasons = await rows(db_url, "SELECT detail->'cleared'->>'reason' FROM alerts"
                         " WHERE resident_id = ANY(%s)", residents)  # fmt: skip
    assert reasons == [("not_confirmed",), ("not_confirmed",)]
    # the engine is down meanwhile: the first report after the impact is only the
    # counter's base (its interval spans the impact); by the next one the walker has
    # walked 40 steps
    await stored_while_down(settings, broker, [still, walker],
                            [steps_report(still, 2, now + 1_000, 500),
                             steps_report(walker, 2, now + 1_000, 500),
                             steps_report(still, 3, now + 61_000, 500),
                             steps_report(walker, 3, now + 61_000, 540)])  # fmt: skip
    clock = Clock(t0 + timedelta(minutes=11))
    second = AlertEngine(settings, fall_model=MODEL, clock=clock)
    try:
        await second.tick()  # loads the watch, and the steps walked while it was down
        for _ in range(2):
            clock.at += timedelta(seconds=30)
            await second.tick()
    finally:
        await second.close()
    got = [[a[1:4] for a in await alerts_of(db_url, r)] for r in residents]
    assert got == [
        [("fall", "critical", "false_alarm"), ("long_lie", "critical", "open")],
        [("fall", "critical", "false_alarm")],
    ]
    detail = await scalar(db_url, "SELECT detail FROM alerts WHERE type = 'long_lie'"
                          " AND resident_id = %s", residents[0])  # fmt: skip
    assert isinstance(detail, dict)
    assert detail["fall_stage"] == "unconfirmed"


async def test_a_band_fall_with_a_red_heart_rate_is_raised_at_once_and_kept_across_a_restart(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """A band-only report is held for 30 s; a heart rate of 36 after the impact raises it at
    once. After a restart, "I'm OK" is recorded on it, not a cancel: the operator calls."""
    dev = f"{topic_prefix}-hr"
    (resident,) = await register_bands(db_url, [dev])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    pulse = Telemetry(device_id=dev, seq=2, ts=now + 5_000, hr=36, worn=True)
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        reading = (device_topic(dev, Channel.TELEMETRY), encode(pulse))
        publish_all(broker.url, [event(dev, 1, EventType.FALL, now), reading])

        async def raised() -> bool:
            return [a[1:4] for a in await alerts_of(db_url, resident)] == [
                ("fall", "critical", "open")
            ]

        await eventually(raised)  # well inside the 30 s a band-only report is held
    detail = await scalar(db_url, "SELECT detail FROM alerts WHERE resident_id = %s", resident)
    assert isinstance(detail, dict)
    assert detail["heart_rate_after"]["bpm"] == 36
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
    ):
        publish_all(broker.url, [event(dev, 3, EventType.IM_OK, now + 9_000)])

        async def recorded() -> bool:
            d = await scalar(db_url, "SELECT detail FROM alerts WHERE resident_id = %s", resident)
            return isinstance(d, dict) and d.get("wearer_says_ok") is True

        await eventually(recorded)
    assert [a[1:4] for a in await alerts_of(db_url, resident)] == [("fall", "critical", "open")]


async def test_a_red_heart_rate_reported_while_the_engine_was_down_is_acted_on_at_start(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Two knocks screened and not confirmed (both fall alerts close). While the engine is
    down, one band reports a heart rate of 36, the other 80. The restarted engine shows the
    first fall again at once, critical, with the reading, and publishes it; not the other."""
    red, calm = f"{topic_prefix}-rd", f"{topic_prefix}-cm"
    residents = await register_bands(db_url, [red, calm])
    settings = ingest_settings(db_url, broker.url)
    now = NOW_MS()
    await knocks_retracted(AlertEngine(settings, fall_model=MODEL), settings, broker,
                           bands=[red, calm], residents=residents, now=now)  # fmt: skip
    pulses = [(device_topic(d, Channel.TELEMETRY),
               encode(Telemetry(device_id=d, seq=3, ts=now + 2_000, hr=hr, worn=True)))
              for d, hr in ((red, 36), (calm, 80))]  # fmt: skip
    await stored_while_down(settings, broker, [red, calm], pulses)  # the engine is down
    async with alert_messages(broker) as published, running_engine(settings):

        async def shown() -> bool:
            return any(m["resident_id"] == residents[0] for m in published)

        await eventually(shown)
    got = [[a[1:4] for a in await alerts_of(db_url, r)] for r in residents]
    assert got == [
        [("fall", "critical", "false_alarm"), ("fall", "critical", "open")],
        [("fall", "critical", "false_alarm")],
    ]
    detail = await scalar(db_url, "SELECT detail FROM alerts WHERE resident_id = %s"
                          " AND closed_at IS NULL", residents[0])  # fmt: skip
    assert isinstance(detail, dict)
    assert detail["heart_rate_after"]["bpm"] == 36
    mine = [(m["kind"], m["type"]) for m in published if m["resident_id"] == residents[0]]
    assert mine == [("raised", "fall")]
    assert not [m for m in published if m["resident_id"] == residents[1]]
