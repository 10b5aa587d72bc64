"""The pages' pure logic, run in real Chromium against the files in web/ (served as static
files on a loopback port, no API): queue order, clocks, dictionary lookups, charts."""

from __future__ import annotations

import contextlib
import functools
import http.server
import random
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chromium import CHROMIUM, MISSING, available

if not available():
    pytest.skip(MISSING, allow_module_level=True)
pytest.importorskip("playwright.async_api", reason="pip install -e '.[dev]' brings playwright")
from playwright.async_api import Page, async_playwright

WEB = Path(__file__).resolve().parents[2] / "web"
RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web_url() -> Iterator[str]:
    handler = functools.partial(Quiet, directory=str(WEB))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.asynccontextmanager
async def page_at(url: str) -> AsyncIterator[Page]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = await browser.new_page(timezone_id="Asia/Shanghai")
            await page.goto(f"{url}/lib/base.css")  # any page of the origin, for the imports
            yield page
        finally:
            await browser.close()


async def test_the_queue_is_ordered_by_severity_then_age_then_id(web_url: str) -> None:
    rng = random.Random(7)
    t0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    alerts = [
        {
            "id": i,
            "severity": rng.choice(list(RANK)),
            "opened_at": (t0 + timedelta(seconds=rng.randrange(0, 600, 30))).isoformat(),
        }
        for i in range(1, 200)
    ]
    rng.shuffle(alerts)
    want = sorted(alerts, key=lambda a: (-RANK[a["severity"]], a["opened_at"], a["id"]))
    async with page_at(web_url) as page:
        got = await page.evaluate(
            """async (alerts) => {
                const {byPriority} = await import('/lib/severity.js');
                return [...alerts].sort(byPriority).map(a => a.id);
            }""",
            alerts,
        )
    assert got == [a["id"] for a in want]


async def test_clocks_and_durations(web_url: str) -> None:
    async with page_at(web_url) as page:
        got = await page.evaluate(
            """async () => {
                const {duration} = await import('/lib/fmt.js');
                const {clockStart} = await import('/lib/severity.js');
                return [duration(0), duration(59.9), duration(65), duration(3725), duration(-3),
                        duration(null),
                        clockStart({opened_at: 'B', detail: {impact_at: 'A'}}),
                        clockStart({opened_at: 'B', detail: {}})];
            }"""
        )
    assert got == ["0:00", "0:59", "1:05", "1:02:05", "0:00", "–", "A", "B"]


async def test_strings_fall_back_to_english_then_the_key_and_fill_variables(web_url: str) -> None:
    async with page_at(web_url) as page:
        got = await page.evaluate(
            """async () => {
                localStorage.removeItem('ec.lang');
                const i18n = await import('/lib/i18n.js');
                const out = [i18n.lang(), i18n.t('console.district', {d: 'X'}),
                             i18n.label('alert.type', 'fall'), i18n.label('alert.type', 'new_kind'),
                             i18n.t('no.such.key')];
                i18n.setLang('en');
                out.push(i18n.t('console.district', {d: 'X'}), i18n.label('severity', 'high'),
                         document.documentElement.lang, localStorage.getItem('ec.lang'));
                return out;
            }"""
        )
    assert got == ["zh-CN", "辖区：X", "跌倒", "new_kind", "no.such.key",
                   "District: X", "High", "en", "en"]  # fmt: skip


async def test_a_gap_in_the_readings_breaks_the_line(web_url: str) -> None:
    async with page_at(web_url) as page:
        d = await page.evaluate(
            """async () => {
                const {lineChart} = await import('/lib/charts.js');
                const at = (m) => new Date(Date.UTC(2026, 10, 23, 0, m)).toISOString();
                const pts = [0, 15, 30, 120, 135].map((m, i) => ({at: at(m), value: 70 + i}));
                const svg = lineChart(pts, {start: at(0), end: at(24 * 60), label: 'HR'});
                return [svg.querySelector('path.series').getAttribute('d'),
                        svg.getAttribute('role'), svg.getAttribute('aria-label')];
            }"""
        )
    path, role, name = d
    assert path.count("M") == 2  # two runs: 0-30 min and 120-135 min
    assert path.count("L") == 3
    assert role == "img"
    assert name == "HR: 74"


async def test_text_from_the_api_is_never_markup(web_url: str) -> None:
    async with page_at(web_url) as page:
        got = await page.evaluate(
            """async () => {
                const {h} = await import('/lib/dom.js');
                const el = h('p', {title: '<b>x</b>'}, '<img src=x onerror=alert(1)>');
                return [el.children.length, el.textContent];
            }"""
        )
    assert got == [0, "<img src=x onerror=alert(1)>"]


def order(oid: int, start: str, end: str) -> dict[str, object]:
    return {"id": oid, "window_start": f"2026-11-{start}:00Z", "window_end": f"2026-11-{end}:00Z"}


async def test_todays_orders_span_the_utc_dates_of_the_local_day(web_url: str) -> None:
    """Shanghai's day runs 16:00 UTC to 16:00 UTC: both UTC dates are asked for, and only
    orders overlapping the local day are kept. (The page's fetch answers from a table here:
    this is the date arithmetic, the API itself is exercised in test_console_flow.)"""
    async with page_at(web_url) as page:
        got = await page.evaluate(
            """async (orders) => {
                const asked = [];
                globalThis.fetch = async (url) => {
                  const date = new URL(url, location.href).searchParams.get('date');
                  asked.push(date);
                  const body = JSON.stringify({items: orders[date] ?? [], next_cursor: null});
                  return new Response(body, {headers: {'content-type': 'application/json'}});
                };
                const {ordersOfToday} = await import('/lib/orders.js');
                const twoAmIn24Nov = new Date('2026-11-23T18:00:00Z');  // in Shanghai
                const list = await ordersOfToday({worker_id: 'W1'}, twoAmIn24Nov);
                return [asked.sort(), list.map(o => o.id).sort()];
            }""",
            {
                "2026-11-23": [order(1, "23T15:00", "23T15:30"), order(2, "23T17:00", "23T18:00")],
                "2026-11-24": [
                    order(2, "23T17:00", "23T18:00"),
                    order(3, "24T09:00", "24T10:00"),
                    order(4, "24T16:30", "24T17:00"),
                ],
            },
        )
    assert got == [["2026-11-23", "2026-11-24"], [2, 3]]


AT = "2026-11-23T02:00:00+00:00"
# one alert of each type, its detail shaped as alerts/detectors/* write it
DETAILS: dict[str, dict[str, Any]] = {
    "sos": {"presses": 2, "first_pressed_at": AT, "wearer_says_ok": False, "wearer_ok_at": None},
    "fall": {"stage": "confirmed", "sources": ["band", "platform"], "score": 0.934,
             "impact_at": AT, "cancel_deadline": AT, "falls": 1, "steps_since": 0,
             "wearer_says_ok": False, "heart_rate_after": {"bpm": 36, "at": AT}},
    "long_lie": {"impact_at": AT, "fallen_at": AT, "fall_stage": "unconfirmed",
                 "sources": ["screen"], "steps_since": 3, "moved_since": False,
                 "wearer_says_ok": False, "heart_rate_after": None},
    "vital_hr_high": {"parameter": "hr", "direction": "high", "value": 134, "news2_score": 3,
                      "observed_at": AT, "since": AT},
    "vital_hr_low": {"parameter": "hr", "direction": "low", "value": 38, "news2_score": 3,
                     "observed_at": AT, "since": AT},
    "vital_spo2_low": {"parameter": "spo2", "direction": "low", "value": 89, "news2_score": 3,
                       "observed_at": AT, "since": AT},
    "vital_sbp_high": {"parameter": "sbp", "direction": "high", "value": 186, "bp_dia": 104,
                       "news2_score": 2, "observed_at": AT, "since": AT},
    "vital_sbp_low": {"parameter": "sbp", "direction": "low", "value": 88, "news2_score": 3,
                      "observed_at": AT, "since": None},
    "vital_temp_high": {"parameter": "temp", "direction": "high", "value": 38.43,
                        "news2_score": 1, "observed_at": AT, "since": AT,
                        "hot_weather_shift_c": 1.6},
    "vital_temp_low": {"parameter": "temp", "direction": "low", "value": 35.0,
                       "news2_score": 3, "observed_at": AT, "since": AT},
    "baseline_deviation": {"parameters": {"hr": {"direction": "high", "level": 2},
                                          "spo2": {"direction": "low", "level": 1}},
                           "parameter": "hr", "value": 96, "z": 4.21, "baseline_median": 68},
    "inactivity": {"last_movement_at": AT, "still_waking_s": 12_600.0, "threshold_s": 10_800.0,
                   "threshold_from": "routine"},
    "geofence_exit": {"nearest_zone": "<b>Home</b>", "outside_by_m": 412.6,
                      "location": {"lat": 32.4, "lon": 120.6, "acc_m": 15},
                      "left_at": AT, "dementia": True,
                      "walking_away": {"since": AT, "metres": 1640}},
    "device_offline": {"cause": "powered_off", "response": "technical_check", "devices": ["a"],
                       "last_seen": AT, "expected_within_s": 900.0},
    "battery_low": {"cause": "battery_low", "response": "battery_visit", "battery_pct": 8,
                    "devices": ["a", "b"], "held_while_away_since": AT},
    "band_not_worn": {"cause": "band_not_worn", "response": "welfare_check", "since": AT,
                      "charging": False, "devices": ["a"]},
    "imu_refused": {"cause": "imu_refused", "response": "band_configuration",
                    "windows_refused": 3, "refused_channel": "imu", "refused_reason": "invalid",
                    "refused_detail": "median |a| is 0.05 g (gravity removed?)", "devices": ["a"]},
    "night_activity": {"night_of": "2026-11-22", "night_started_at": AT, "steps_tonight": 1240,
                       "threshold_steps": 520, "usual_night_steps": 130, "nights_known": 6,
                       "dementia": False},
}  # fmt: skip


async def test_every_alert_says_why_in_words(web_url: str) -> None:
    from alerts.detectors.types import AlertType

    assert set(DETAILS) == set(AlertType)  # a new alert type needs its evidence rows
    async with page_at(web_url) as page:
        got = await page.evaluate(
            """async (details) => {
                const i18n = await import('/lib/i18n.js');
                const {evidence} = await import('/lib/evidence.js');
                i18n.setLang('en');
                const out = {};
                for (const [type, detail] of Object.entries(details)) {
                    out[type] = evidence({type, detail}).map(([k, text]) => [k, i18n.t(k), text]);
                }
                out.junk = [evidence({type: 'fall', detail: {stage: null, sources: 'x'}}),
                            evidence({type: 'new_kind', detail: {a: 1}}), evidence(null),
                            evidence({type: 'vital_hr_high', detail: {parameter: 'hr'}}),
                            evidence({type: 'toString', detail: []}),
                            evidence({type: 7, detail: 'x'})];
                return out;
            }""",
            DETAILS,
        )
    junk = got.pop("junk")
    assert junk == [[], [], [], [], [], []]  # missing or odd fields give no row, never an error
    for type_, rows in got.items():
        assert rows, type_
        for key, text_label, text in rows:
            assert text_label != key, key  # the label is in the dictionary
            assert text, (type_, key)
            assert not {"undefined", "NaN", "null"} & set(text.split()), (type_, key, text)
    shown = {t: {label: text for _, label, text in rows} for t, rows in got.items()}
    assert shown["vital_hr_high"]["Reading"] == "134 /min"
    assert shown["vital_sbp_high"]["Reading"] == "186/104 mmHg"
    assert shown["vital_temp_high"]["Estimated core temperature"] == "38.4 °C"
    assert shown["vital_temp_high"]["Hot-weather rise taken off"] == "1.6 °C"
    assert "Since" not in shown["vital_sbp_low"]
    assert shown["baseline_deviation"]["Off the resident's usual"] == "Heart rate ↑, SpO₂ ↓"
    assert shown["baseline_deviation"]["Usual (median)"] == "68 /min"
    assert shown["inactivity"]["Still in waking hours"] == "3:30:00"
    assert shown["inactivity"]["Allowed"] == "3:00:00 (from the resident's routine)"
    assert shown["night_activity"]["Steps tonight"] == "1,240"
    assert shown["battery_low"]["Held while away, since"]  # raised when they were due back
    assert shown["night_activity"]["Usual night (median)"] == "130"
    assert shown["geofence_exit"]["Nearest safe zone"] == "<b>Home</b>"  # shown as text
    assert shown["geofence_exit"]["Still walking away"].startswith("1,640 m (")
    assert shown["device_offline"]["Cause"] == "Switched off"
    assert shown["battery_low"]["Bands affected"] == "2"
    assert shown["imu_refused"]["Refused because"] == "median |a| is 0.05 g (gravity removed?)"
    assert shown["imu_refused"]["Suggested response"] == "Check the band's configuration"
    assert shown["fall"]["Detected by"] == "Band, Platform, full window"
    assert shown["long_lie"]["Stage"] == "Not borne out by the full window"
    assert shown["fall"]["Abnormal heart rate after the fall"].startswith("36 /min (")
    assert "Abnormal heart rate after the fall" not in shown["long_lie"]  # None: no row
