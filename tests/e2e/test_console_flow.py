"""End to end in real headless Chromium (Debian's, driven by Playwright; no browser is
downloaded): the real API under uvicorn on a loopback port, the test's PostgreSQL database
and Mosquitto, ingest and the alert engine running. An operator signs in, a fall published
by a wristband through the broker appears in the queue within 2 s, the operator dispatches the
suggested worker, the worker accepts on the worker page, the console shows the progress, and
the family member sees their parent (and only their parent).

Set ELDERCARE_SCREENSHOTS=docs/screenshots to keep PNGs of the main screens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from eldercare.protocol import DeviceEvent, EventType, Location, LocationSource, Telemetry, encode
from eldercare.registry import EmergencyContact, NewResident, add_residents, provision_wristbands
from eldercare.topics import Channel, device_topic
from tests.conftest import REPO, Broker, free_port, wait_for_port
from tests.support import NOW_MS, ingest_settings, publish_all, running_ingest

CHROMIUM = Path(os.environ.get("ELDERCARE_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; or set"
        " ELDERCARE_CHROMIUM): the browser tests need a real browser",
        allow_module_level=True,
    )
pytest.importorskip("playwright.async_api", reason="pip install -e '.[dev]' brings playwright")
from playwright.async_api import Browser, Page, async_playwright  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from tests.integration.test_alert_engine import running_engine  # noqa: E402

PASSWORD = "e2e-password-1"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the browsers' time zone
DISTRICT = "Rucheng"
SHOTS = os.environ.get("ELDERCARE_SCREENSHOTS")
if SHOTS:
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 360, "height": 780}


@dataclass(frozen=True, slots=True)
class World:
    parent: int
    other: int
    parent_band: str
    other_band: str
    worker_id: str


PARENT_NAME = "王秀英"
CONTACT = EmergencyContact("王小明", "儿子", "13800000000")
OTHER_NAME = "李建国"
WORKER_NAME = "张师傅"


async def seed(db_url: str, prefix: str) -> World:
    """Two residents of one district (one the family's parent), two workers on shift, users."""
    from api.identity import create_user
    from api.principal import Role

    now = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        parent, other, third = await add_residents(
            conn,
            [
                NewResident(name=PARENT_NAME, birth_year=1941, sex="female", district=DISTRICT,
                            address="如城街道 海阳路 12 号", home_lat=32.3812, home_lon=120.5660,
                            living_alone=True, conditions=("hypertension", "diabetes"),
                            emergency_contacts=(CONTACT,)),
                NewResident(name=OTHER_NAME, birth_year=1938, sex="male", district=DISTRICT,
                            address="如城街道 中山路 88 号", home_lat=32.3721, home_lon=120.5812),
                NewResident(name="张桂兰", birth_year=1944, sex="female", district=DISTRICT,
                            address="如城街道 福前路 5 号", home_lat=32.3900, home_lon=120.5550),
            ],
        )  # fmt: skip
        bands = [f"{prefix}-p", f"{prefix}-o", f"{prefix}-t"]
        await provision_wristbands(conn, list(zip(bands, [parent, other, third], strict=True)))
        has_dispatch = await (
            await conn.execute("SELECT to_regclass('service_workers') IS NOT NULL")
        ).fetchone()
        for wid, name, lat, lon in (
            ()
            if not (has_dispatch and has_dispatch[0])
            else (
                ("W-E2E-1", WORKER_NAME, 32.3790, 120.5700),
                ("W-E2E-2", "孙阿姨", 32.3650, 120.5900),
            )
        ):
            await conn.execute(
                "INSERT INTO service_workers (worker_id, name, district, skills, home_lat,"
                " home_lon, status, lat, lon, location_at) VALUES"
                " (%s, %s, %s, %s, %s, %s, 'available', %s, %s, %s)",
                (wid, name, DISTRICT, ["caregiver", "nurse", "meal_delivery", "cleaning"],
                 lat, lon, lat, lon, now),
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO worker_shifts (worker_id, starts_at, ends_at) VALUES (%s, %s, %s)",
                (wid, now - timedelta(hours=4), now + timedelta(hours=6)),
            )
        await create_user(conn, username="op1", password=PASSWORD, role=Role.OPERATOR,
                          display_name="调度员 李", district=DISTRICT)  # fmt: skip
        await create_user(conn, username="sup1", password=PASSWORD, role=Role.SUPERVISOR,
                          display_name="主管 周", district=DISTRICT)  # fmt: skip
        await create_user(conn, username="worker1", password=PASSWORD, role=Role.WORKER,
                          display_name=WORKER_NAME, worker_id="W-E2E-1")  # fmt: skip
        await create_user(conn, username="family1", password=PASSWORD, role=Role.FAMILY,
                          display_name="王小明", resident_ids=[parent])  # fmt: skip
        await conn.commit()
    return World(parent, other, bands[0], bands[1], "W-E2E-1")


HOME = Location(32.3812, 120.5660, 15, LocationSource.GPS)


def vitals_history(band: str, *, hours: int = 24, every_min: int = 15) -> list[tuple[str, bytes]]:
    """A day of ordinary readings, so the detail has vitals and a 24 h chart."""
    now = NOW_MS()
    out = []
    n = hours * 60 // every_min
    for i in range(n):
        ts = now - (n - i) * every_min * 60_000
        msg = Telemetry(device_id=band, seq=i + 1, ts=ts, hr=68 + (i % 9), spo2=96 + (i % 3),
                        bp_sys=128 + (i % 7), bp_dia=78, skin_temp_c=33.5, steps=40 * i,
                        battery_pct=80, worn=True, loc=HOME)  # fmt: skip
        out.append((device_topic(band, Channel.TELEMETRY), encode(msg)))
    return out


@pytest.fixture
def api_url(db_url: str, broker: Broker, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "ELDERCARE_DATABASE_URL": db_url,
        "ELDERCARE_MQTT_URL": broker.url,
        "ELDERCARE_ENVIRONMENT": "test",
    }
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.e2e.serve", str(port)], cwd=REPO,
                            env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        # --no-sandbox: the test may run as root (CI containers), where the sandbox refuses
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


class PageErrors(list[str]):
    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda exc: self.append(f"{page.url}: {exc}"))
        return page


async def sign_in(browser: Browser, url: str, user: str, errors: PageErrors,
                  *, viewport: dict[str, int], **context: object) -> Page:  # fmt: skip
    ctx = await browser.new_context(viewport=viewport, locale="zh-CN",  # type: ignore[arg-type]
                                    timezone_id="Asia/Shanghai", bypass_csp=True,
                                    **context)  # fmt: skip
    page = errors.watch(await ctx.new_page())
    await page.goto(url)
    await page.get_by_label("用户名").fill(user)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    try:
        await page.wait_for_selector("#app:not([hidden])", timeout=20_000)
    except PlaywrightTimeout:
        said = await page.locator("#login-error").all_inner_texts()
        raise AssertionError(f"{user} could not sign in at {url}: {said}") from None
    return page


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


async def accessibility_violations(page: Page) -> list[str]:
    """axe-core's WCAG 2.1 A/AA rules on the page as it is now (axe is injected by the test,
    never served by the API)."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    found = await page.evaluate(
        """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa']}))
            .violations.map(v => `${v.id}: ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)"""
    )
    return [str(v) for v in found]


async def page_weight(page: Page) -> str:
    """How heavy and fast the page's first load was (for the docs; not asserted)."""
    got = await page.evaluate(
        """() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const res = performance.getEntriesByType('resource')
                .filter(r => /\\.(js|css|png)$/.test(new URL(r.name).pathname));
            return [Math.round(nav.domContentLoadedEventEnd), Math.round(nav.loadEventEnd),
                    res.length, res.reduce((n, r) => n + r.decodedBodySize, 0)];
        }"""
    )
    dcl, load, files, size = got
    return f"DOMContentLoaded {dcl} ms, load {load} ms, {files} files, {size / 1024:.0f} KiB"


async def fits_a_phone(page: Page) -> bool:
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    return int(width) <= PHONE["width"]


async def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    if SHOTS:
        await page.screenshot(path=str(Path(SHOTS) / name), full_page=full_page)


@dataclass(slots=True)
class Scene:
    world: World
    browser: Browser
    console: Page
    errors: PageErrors
    broker_url: str


@contextlib.asynccontextmanager
async def fall_in_the_queue(
    db_url: str, broker: Broker, topic_prefix: str, api_url: str
) -> AsyncIterator[Scene]:
    """Seeded world, ingest + alert engine + API running, the operator signed in; an SOS and
    then the parent's fall published through the broker. The fall must be in the operator's
    queue within 2 s of its publication."""
    world = await seed(db_url, topic_prefix)
    settings = ingest_settings(db_url, broker.url)
    errors = PageErrors()
    async with (
        running_engine(settings) as engine,
        running_ingest(settings, handlers=[engine.on_batch]),
        chromium() as browser,
    ):
        publish_all(broker.url, vitals_history(world.parent_band))
        console = await sign_in(browser, f"{api_url}/console/", "op1", errors, viewport=DESKTOP)
        await console.wait_for_selector("#live[data-state='live']", timeout=15_000)
        print("console page load:", await page_weight(console))
        await console.locator("#queue").get_by_text("当前没有待处理告警").wait_for()

        # the other resident presses SOS first: older, also critical
        sos = DeviceEvent(device_id=world.other_band, seq=1, ts=NOW_MS(), type=EventType.SOS)
        publish_all(broker.url, [(device_topic(world.other_band, Channel.EVENTS), encode(sos))])
        await console.locator(".queue-item[data-type='sos']").wait_for(timeout=5_000)

        # the fall, from the parent's band, through the broker: in the queue within 2 s
        fall = DeviceEvent(device_id=world.parent_band, seq=10_000, ts=NOW_MS(),
                           type=EventType.FALL)  # fmt: skip
        started = time.monotonic()
        publish_all(broker.url, [(device_topic(world.parent_band, Channel.EVENTS), encode(fall))])
        await console.locator(".queue-item[data-type='fall']").wait_for(timeout=2_000)
        print(f"fall in the console queue {time.monotonic() - started:.2f} s after publishing")
        assert await console.locator("#announce").inner_text() == "新告警：危急，跌倒"
        yield Scene(world, browser, console, errors, broker.url)
    assert errors == []


async def open_the_fall(console: Page) -> None:
    item = console.locator(".queue-item[data-type='fall']")
    await item.get_by_role("button").click()
    detail = console.locator("#detail")
    await detail.get_by_text("老人信息").wait_for()
    await detail.get_by_text(CONTACT.phone).wait_for()  # the emergency contact
    await detail.locator(".vital-chart path.series[d^='M']").first.wait_for()  # 24 h chart


async def test_a_fall_is_in_the_queue_within_2_s_by_priority_and_the_operator_closes_it(
    db_url: str, broker: Broker, topic_prefix: str, api_url: str
) -> None:
    async with fall_in_the_queue(db_url, broker, topic_prefix, api_url) as scene:
        console, browser = scene.console, scene.browser
        item = console.locator(".queue-item[data-type='fall']")
        await console.wait_for_timeout(1100)  # the long-lie clock has ticked
        text = await item.inner_text()
        assert PARENT_NAME in text
        assert "危急" in text  # priority as text, beside colour and symbol
        assert await item.locator(".sev-symbol").inner_text() == "◆"
        assert await item.locator("time.long-lie").inner_text() != "–"
        # ordered by severity, then age: the SOS came first
        types = await console.locator(".queue-item").evaluate_all(
            "els => els.map(e => e.dataset.type)"
        )
        assert types == ["sos", "fall"]
        await shot(console, "console-queue.png")

        await open_the_fall(console)
        await shot(console, "alert-detail.png")
        assert await accessibility_violations(console) == []
        await console.locator("#detail").get_by_role("button", name="在地图上显示").click()
        assert (
            await console.get_by_role("tab", name="地图").get_attribute("aria-selected") == "true"
        )
        await console.locator(".leaflet-marker-icon.pin.sev-critical").first.wait_for()
        await console.wait_for_timeout(400)  # the zoom animation
        await shot(console, "map.png")

        # the family sees that something is wrong, and that the centre has it
        family = await sign_in(browser, f"{api_url}/family/", "family1", scene.errors,
                               viewport=PHONE)  # fmt: skip
        await family.locator(".big-state.attention").wait_for()
        await family.locator(".alert-box").get_by_text("跌倒").wait_for()
        assert OTHER_NAME not in await family.locator("body").inner_text()
        await shot(family, "family.png", full_page=True)
        assert await fits_a_phone(family)
        assert await accessibility_violations(family) == []

        detail = console.locator("#detail")
        await detail.get_by_role("button", name="确认告警").click()
        await detail.locator(".detail-head .chip.state-acknowledged").wait_for()
        await item.locator(".chip.state-acknowledged").wait_for()  # the queue follows
        await detail.get_by_label("结果").select_option("actionable")
        await detail.get_by_label("说明").fill("家属已到场")
        await detail.get_by_role("button", name="关闭告警").click()
        await item.wait_for(state="detached", timeout=5_000)  # closed: out of the queue
        assert await console.locator(".queue-item").count() == 1

        # the same console in English
        await console.locator("header select[name='lang']").select_option("en")
        await console.locator(".queue-item[data-type='sos']").get_by_text("Critical").wait_for()
        await console.get_by_role("tab", name="Map").wait_for()


@contextlib.asynccontextmanager
async def running_dispatch(db_url: str, broker_url: str) -> AsyncIterator[None]:
    """The dispatch service: it syncs the catalogue and publishes every order change (the
    outbox) for the live feed. Automatic dispatch is off: here the operator dispatches."""
    from dispatch.runner import DispatchRunner

    settings = ingest_settings(db_url, broker_url, dispatch_auto_severities=[],
                               dispatch_offer_timeout_s=600.0)  # fmt: skip
    runner = DispatchRunner(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    ready = asyncio.create_task(runner.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    assert ready in done, "the dispatch service did not start"
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def has_dispatch(api_url: str) -> bool:
    async with httpx.AsyncClient() as client:
        paths = (await client.get(f"{api_url}/openapi.json")).json()["paths"]
    return "/alerts/{alert_id}/dispatch" in paths and "/orders/{order_id}/accept" in paths


async def test_the_suggested_worker_is_dispatched_accepts_and_everyone_sees_the_progress(
    db_url: str, broker: Broker, topic_prefix: str, api_url: str
) -> None:
    if not await has_dispatch(api_url):
        pytest.skip("the API has no dispatch routes yet (/alerts/{id}/dispatch, /orders/...)")
    async with (
        fall_in_the_queue(db_url, broker, topic_prefix, api_url) as scene,
        running_dispatch(db_url, broker.url),
    ):
        console, browser, errors = scene.console, scene.browser, scene.errors
        await open_the_fall(console)
        detail = console.locator("#detail")
        dispatch = detail.locator("[data-action='dispatch']")
        assert WORKER_NAME in await dispatch.inner_text()  # the suggested worker, the nearest
        await dispatch.click()
        # offered to the worker: the console says who, and that the offer waits for them
        progress = console.locator("[data-testid='progress']")
        await progress.get_by_text(WORKER_NAME).wait_for(timeout=10_000)
        await progress.get_by_text("待接单").wait_for(timeout=10_000)
        assert await dispatch.is_disabled()  # one click sends one worker

        worker = await sign_in(browser, f"{api_url}/worker/", "worker1", errors,
                               viewport=PHONE, geolocation={"latitude": HOME.lat,
                               "longitude": HOME.lon}, permissions=["geolocation"])  # fmt: skip
        offer = worker.locator("article.offer")
        await offer.wait_for(timeout=10_000)
        assert PARENT_NAME in await offer.inner_text()
        await shot(worker, "worker-offer.png", full_page=True)
        assert await fits_a_phone(worker)
        assert await accessibility_violations(worker) == []
        await offer.get_by_role("button", name="接单").click()
        await worker.locator("#route li.state-accepted").wait_for(timeout=10_000)
        await shot(worker, "worker-route.png", full_page=True)

        # the console shows who is coming and that the worker accepted, live
        await progress.get_by_text("已接单").wait_for(timeout=10_000)
        await detail.locator(".detail-head .chip.state-dispatched").wait_for(timeout=10_000)
        await console.locator("#queue .qi-progress").get_by_text(WORKER_NAME).wait_for()
        await shot(console, "alert-progress.png")

        family = await sign_in(browser, f"{api_url}/family/", "family1", errors, viewport=PHONE)
        await family.locator("#resident-name").get_by_text(PARENT_NAME).wait_for()
        await family.locator(".big-state.attention").wait_for()
        await family.locator(".alert-box").get_by_text(WORKER_NAME).wait_for(timeout=10_000)
        assert OTHER_NAME not in await family.locator("body").inner_text()
        # and books a meal delivery for tomorrow morning
        tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).date().isoformat()
        await family.get_by_label("服务项目").select_option("meal_delivery")
        await family.get_by_label("日期").fill(tomorrow)
        await family.get_by_label("开始").fill("09:00")
        await family.get_by_label("结束").fill("10:00")
        await family.get_by_label("备注").fill("少盐")
        await family.get_by_role("button", name="提交预约").click()
        await family.locator("#svc-h + .list").get_by_text("送餐").wait_for(timeout=10_000)
        await shot(family, "family.png", full_page=True)
        assert await fits_a_phone(family)
        assert await accessibility_violations(family) == []

        await console.get_by_role("tab", name="今日工单").click()
        await console.locator("#panel-board .block.kind-emergency").wait_for()

        # the worker sets off, arrives (checked in where the resident lives) and finishes
        stop = worker.locator("#route li.kind-emergency")
        await stop.get_by_role("button", name="出发").click()
        await worker.locator("#route li.state-en_route").wait_for(timeout=10_000)
        await progress.get_by_text("在路上").wait_for(timeout=10_000)
        await stop.get_by_role("button", name="到达签到").click()
        await worker.locator("#route li.state-on_site").wait_for(timeout=10_000)
        await stop.get_by_label("服务结果").select_option("done")
        await stop.get_by_label("服务记录").fill("老人已扶起，无明显外伤")
        await shot(worker, "worker-check-out.png", full_page=True)
        await stop.get_by_role("button", name="完成签退").click()
        await worker.locator("#route li.state-completed").wait_for(timeout=10_000)
        # a completed emergency resolves its alert: it leaves the operator's queue
        await console.locator(".queue-item[data-type='fall']").wait_for(
            state="detached", timeout=20_000
        )
        await shot(console, "board.png")
        await console.get_by_role("tab", name="中心数据").click()
        await console.locator("#panel-figures").get_by_text("仅对主管开放").wait_for()  # 403
        supervisor = await sign_in(browser, f"{api_url}/console/", "sup1", errors,
                                   viewport=DESKTOP)  # fmt: skip
        await supervisor.get_by_role("tab", name="中心数据").click()
        await supervisor.locator("#panel-figures .kpi").first.wait_for()
        await shot(supervisor, "figures.png")
        assert await accessibility_violations(supervisor) == []


async def test_a_family_member_sees_only_their_parent(
    db_url: str, topic_prefix: str, api_url: str
) -> None:
    world = await seed(db_url, topic_prefix)
    errors = PageErrors()
    async with chromium() as browser:
        family = await sign_in(browser, f"{api_url}/family/", "family1", errors, viewport=PHONE)
        await family.locator("#resident-name").get_by_text(PARENT_NAME).wait_for()
        assert await family.locator("#resident-pick").count() == 0  # one parent, no picker
        page_text = await family.locator("body").inner_text()
        assert OTHER_NAME not in page_text
        # the page's own session cannot read the other resident: out of scope is 404
        statuses = await family.evaluate(
            """async ([mine, other]) => {
                const {api} = await import('/lib/api.js');
                const out = [];
                for (const id of [mine, other]) {
                  try { await api(`/residents/${id}/status`); out.push(200); }
                  catch (e) { out.push(e.status); }
                }
                return out;
            }""",
            [world.parent, world.other],
        )
        assert statuses == [200, 404]
        # and the console is not for families
        console = errors.watch(await family.context.new_page())
        await console.goto(f"{api_url}/console/")
        await console.get_by_label("用户名").fill("family1")
        await console.get_by_label("密码").fill(PASSWORD)
        await console.get_by_role("button", name="登录").click()
        await console.get_by_text("此账号不能使用本页面").wait_for()
    assert errors == []
