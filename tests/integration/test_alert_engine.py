"""The live alert engine on the real broker and database: raise, repeat, cancel, restart,
operator transitions, and published alert events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.detectors import AlertRaised, AlertType, Severity
from alerts.engine import AlertEngine
from alerts.lifecycle import InvalidTransition, Outcome
from alerts.store import acknowledge, apply_events, dispatch, false_alarm, resolve
from eldercare.protocol import DeviceEvent, EventType, StatusReport
from ingest.handoff import IngestedBatch
from ingest.rows import Accepted
from tests.conftest import Broker
from tests.integration.engine_support import (
    MODEL,
    alert_messages,
    alerts_of,
    event,
    fall_window,
    impact_windows,
    running_engine,
)
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
