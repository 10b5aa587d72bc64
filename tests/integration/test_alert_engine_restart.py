"""The live alert engine across restarts: open alerts updated, not raised again; a fall
watched, and a red heart rate acted on, across the time the engine was down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.detectors import AlertType
from alerts.engine import AlertEngine
from eldercare.protocol import EventType, Telemetry, encode
from eldercare.settings import Settings
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker
from tests.integration.engine_support import (
    MODEL,
    alert_messages,
    alerts_of,
    event,
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


async def test_a_band_fall_report_held_when_the_engine_stopped_is_raised_after_a_restart(
    db_url: str, broker: Broker, topic_prefix: str
) -> None:
    """Two bands report a fall; the engine holds both (30 s for an "I'm OK") and stops.
    Ingest had stored and acknowledged both reports. One wearer presses "I'm OK" while the
    engine is down. The restarted engine raises the other's fall when the hold ends."""
    lying, fine = f"{topic_prefix}-hl", f"{topic_prefix}-ok"
    residents = await register_bands(db_url, [lying, fine])
    settings = ingest_settings(db_url, broker.url)
    t0 = datetime.now(UTC)
    now = int(t0.timestamp() * 1000)
    first = AlertEngine(settings, fall_model=MODEL, clock=Clock(t0))
    async with running_ingest(settings, handlers=[first.on_batch]):
        publish_all(broker.url, [event(d, 1, EventType.FALL, now) for d in (lying, fine)])

        async def held() -> bool:
            return all(first.states.get(r) and first.states[r].falls.episode for r in residents)

        await eventually(held)
    await first.close()
    assert await alerts_of(db_url, residents[0]) == []  # held: nothing stored
    async with running_ingest(settings, handlers=[]):  # the engine is down
        publish_all(broker.url, [event(fine, 2, EventType.IM_OK, now + 5_000)])

        async def stored() -> bool:
            query = "SELECT count(*) FROM device_events WHERE type = 'im_ok'"
            return await scalar(db_url, query) == 1

        await eventually(stored)
    clock = Clock(t0 + timedelta(seconds=12))
    engine = AlertEngine(settings, fall_model=MODEL, clock=clock)
    try:
        await engine.tick()  # loads the states: the report is held again
        assert await alerts_of(db_url, residents[0]) == []
        clock.at = t0 + timedelta(seconds=31)
        await engine.tick()
        assert [a[1:4] for a in await alerts_of(db_url, residents[0])] == [
            ("fall", "critical", "open")
        ]
        assert await alerts_of(db_url, residents[1]) == []  # "I'm OK" ended it
        clock.at = t0 + timedelta(minutes=11)
        await engine.tick()
        assert [a[1] for a in await alerts_of(db_url, residents[0])] == ["fall", "long_lie"]
    finally:
        await engine.close()
