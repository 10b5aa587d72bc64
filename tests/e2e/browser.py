"""Driving Debian's Chromium with Playwright: sign in, collect page errors, check
accessibility (axe-core, injected by the test) and phone width, take screenshots."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.e2e.chromium import CHROMIUM
from tests.e2e.world import PASSWORD

SHOTS = os.environ.get("ELDERCARE_SCREENSHOTS")
if SHOTS:
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 360, "height": 780}


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
