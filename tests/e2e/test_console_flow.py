"""End to end in real headless Chromium (Debian's, driven by Playwright; no browser is
downloaded): the real API under uvicorn on a loopback port, the test's PostgreSQL database
and Mosquitto, ingest and the alert engine running. An operator signs in, a fall published
by a wristband through the broker appears in the queue within 2 s, the operator dispatches the
suggested worker, the worker accepts on the worker page, the console shows the progress, and
the family member sees their parent (and only their parent).

Set ELDERCARE_SCREENSHOTS=docs/screenshots to keep PNGs of the main screens.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from eldercare.absence import set_away
from eldercare.protocol import DeviceEvent, EventType, encode
from eldercare.topics import Channel, device_topic
from tests.conftest import Broker
from tests.e2e.chromium import MISSING, available
from tests.e2e.world import (
    CONTACT,
    HOME,
    OTHER_NAME,
    PARENT_NAME,
    PASSWORD,
    WORKER_NAME,
    World,
    running_dispatch,
    seed,
    vitals_history,
)
from tests.support import NOW_MS, ingest_settings, publish_all, running_ingest

if not available():
    pytest.skip(MISSING, allow_module_level=True)
pytest.importorskip("playwright.async_api", reason="pip install -e '.[dev]' brings playwright")
from playwright.async_api import Browser, Page

from tests.e2e.browser import (
    DESKTOP,
    PHONE,
    PageErrors,
    accessibility_violations,
    chromium,
    fits_a_phone,
    page_weight,
    shot,
    sign_in,
)
from tests.integration.engine_support import impact_windows, running_engine

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the browsers' time zone


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
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        now = datetime.now(UTC)  # in hospital for now: her fall is raised all the same
        await set_away(conn, world.parent, starts_at=now - timedelta(hours=1),
                       ends_at=now + timedelta(hours=2), reason="住院", actor="user:1",
                       now=now)  # fmt: skip
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

        # the fall, from the parent's band, through the broker, as a band sends it
        # (docs/protocol.md): the early part of the impact window at once, its own fall
        # event, then the whole window (lying still). In the queue within 2 s of the first.
        impact = NOW_MS() - 1_000
        early, whole = impact_windows(world.parent_band, impact, back_to_start=False)
        fall = DeviceEvent(device_id=world.parent_band, seq=10_000, ts=impact + 500,
                           type=EventType.FALL)  # fmt: skip
        started = time.monotonic()
        publish_all(broker.url, [early, (device_topic(world.parent_band, Channel.EVENTS),
                                         encode(fall))])  # fmt: skip
        await console.locator(".queue-item[data-type='fall']").wait_for(timeout=2_000)
        print(f"fall in the console queue {time.monotonic() - started:.2f} s after publishing")
        publish_all(broker.url, [whole])
        assert await console.locator("#announce").inner_text() == "新告警：危急，跌倒"
        yield Scene(world, browser, console, errors, broker.url)
    assert errors == []


async def open_the_fall(console: Page) -> None:
    item = console.locator(".queue-item[data-type='fall']")
    await item.get_by_role("button").click()
    detail = console.locator("#detail")
    await detail.get_by_text("老人信息").wait_for()
    await detail.get_by_text(CONTACT.phone).wait_for()  # the emergency contact
    assert "住院" in await detail.get_by_test_id("away").inner_text()  # away from home
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
        why = console.locator("#detail [data-testid='evidence']")
        await why.get_by_text("告警依据").wait_for()  # the detector's evidence, in words
        assert "来源" in await why.inner_text()
        await shot(console, "alert-detail.png")
        assert await accessibility_violations(console) == []
        # she is back from hospital; and then, as the family tells the operator, in again
        card = console.locator("#detail")
        await card.get_by_role("button", name="已回家").click()
        await card.get_by_role("button", name="记录离家").wait_for()
        assert await card.get_by_test_id("away").count() == 0
        await card.get_by_label("原因").select_option("hospital")
        await card.get_by_role("button", name="记录离家").click()
        assert "住院" in await card.get_by_test_id("away").inner_text()
        await shot(console, "alert-detail-away.png", full_page=True)
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
        assert "住院" in await family.get_by_test_id("away").inner_text()  # as the centre set it
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
        assert await worker.locator("#shifts li:not(.empty)").count() == 1  # on shift now
        await shot(worker, "worker-route.png", full_page=True)

        # the console shows who is coming and that the worker accepted, live
        await progress.get_by_text("已接单").wait_for(timeout=10_000)
        await detail.locator(".detail-head .chip.state-dispatched").wait_for(timeout=10_000)
        await console.locator("#queue .qi-progress").get_by_text(WORKER_NAME).wait_for()
        # the alert's history names who moved it: the worker who accepted, by name
        await detail.locator("ol.history").get_by_text(f"已派单 · {WORKER_NAME}").wait_for()
        await shot(console, "alert-progress.png")

        family = await sign_in(browser, f"{api_url}/family/", "family1", errors, viewport=PHONE)
        await family.locator("#resident-name").get_by_text(PARENT_NAME).wait_for()
        await family.locator(".big-state.attention").wait_for()
        await family.locator(".alert-box").get_by_text(WORKER_NAME).wait_for(timeout=10_000)
        assert OTHER_NAME not in await family.locator("body").inner_text()
        # what has happened, by role: raised by the system, dispatched by a care worker
        history = family.locator(".alert-box .alert-history")
        await history.locator("summary").click()
        await history.get_by_text("已派单").wait_for(timeout=10_000)
        steps = await history.locator("li").all_inner_texts()
        assert "待处理 · 系统" in steps[0]
        assert "已派单 · 服务人员" in steps[-1]
        assert ":" not in " ".join(s.split(" ", 1)[1] for s in steps)  # no worker:W1, user:7
        # and books a meal delivery for tomorrow morning
        tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).date().isoformat()
        await family.get_by_label("服务项目").select_option("meal_delivery")
        await family.get_by_label("日期").fill(tomorrow)
        await family.get_by_label("开始").fill("09:00")
        await family.get_by_label("结束").fill("10:00")
        await family.get_by_label("备注").fill("少盐")
        await family.get_by_role("button", name="提交预约").click()
        await family.locator("#svc-h + .list").get_by_text("送餐").wait_for(timeout=10_000)
        # the page drew itself again after the booking; the history the reader opened stays open
        assert await family.locator(".alert-box details.alert-history[open]").count() == 1
        # and cleaning every week on that day from then on: a standing service, then stopped
        await family.get_by_label("服务项目").select_option("cleaning")
        await family.get_by_label("开始").fill("14:00")
        await family.get_by_label("结束").fill("16:00")
        await family.get_by_label("每周这一天都要").check()
        await family.get_by_role("button", name="提交预约").click()
        standing = family.locator("ul.standing li")
        await standing.get_by_text("保洁").wait_for(timeout=10_000)
        weekday = "一二三四五六日"[datetime.fromisoformat(tomorrow).weekday()]
        assert f"每周 {weekday}" in await standing.inner_text()
        assert "14:00–16:00" in await standing.inner_text()
        await shot(family, "family.png", full_page=True)
        assert await fits_a_phone(family)
        assert await accessibility_violations(family) == []
        await standing.get_by_role("button", name="停止").click()
        await standing.wait_for(state="detached", timeout=10_000)

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
