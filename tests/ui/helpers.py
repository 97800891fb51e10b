"""Driving the dashboard in a real headless Chromium (Debian's, via Playwright).

``open_dashboard`` launches the browser (no download: ``/usr/bin/chromium``),
records console errors, uncaught exceptions and dialogs, and yields a ``Dashboard``
with deadline-polling helpers.  Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "ui"
CHROMIUM = os.environ.get("MESOSLITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}


def require_browser() -> None:
    """Skip (fail in CI) without Playwright or Chromium: scripts/provision installs them."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        require(False, "Playwright (pip install -e '.[test]')")
    require(Path(CHROMIUM).exists(), f"Chromium at {CHROMIUM} (apt-get install chromium)")


@dataclass
class Dashboard:
    page: Any
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    async def goto(self, route: str = "") -> None:
        """Open ``/#/<route>`` and wait until the first state has been drawn."""
        await self.page.goto(f"{self.base_url}/#/{route}")
        await self.wait_for("!document.querySelector('#main .loading')",
                            timeout=10, what="the first render")

    async def wait_for(self, expression: str, arg: Any = None, timeout: float = 2.0,
                       what: str = "") -> Any:
        """Evaluate the JS ``expression`` (a function body's value, with ``arg``)
        until it is truthy; fail after ``timeout`` seconds (a deadline, not a sleep)."""
        deadline = time.monotonic() + timeout
        script = f"(arg) => ({expression})"
        while True:
            value = await self.page.evaluate(script, arg)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"not within {timeout:g}s: {what or expression}")
            await asyncio.sleep(0.05)

    async def wait_text(self, selector: str, text: str, timeout: float = 2.0) -> None:
        """Until an element matching ``selector`` contains ``text`` (literally)."""
        await self.wait_for(
            "[...document.querySelectorAll(arg.selector)]"
            ".some((el) => el.textContent.includes(arg.text))",
            {"selector": selector, "text": text}, timeout, f"{text!r} in {selector}")

    async def screenshot(self, name: str, docs_copy: Path | None = None) -> Path:
        """Save ``test-artifacts/ui/<name>.png``; also to ``docs_copy`` (a screenshot
        committed under docs/) when that is missing or MESOSLITE_UPDATE_SCREENSHOTS=1,
        so ordinary test runs leave the committed picture alone."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        if docs_copy is not None and (not docs_copy.exists() or os.environ.get(
                "MESOSLITE_UPDATE_SCREENSHOTS") == "1"):
            docs_copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, docs_copy)
        return path

    def assert_clean(self) -> None:
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.console_errors, f"console errors: {self.console_errors}"


@asynccontextmanager
async def open_dashboard(base_url: str, credentials: tuple[str, str] | None = None
                         ) -> AsyncIterator[Dashboard]:
    """A page on ``base_url``; ``credentials`` (user, password) answer HTTP Basic."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            login = ({"username": credentials[0], "password": credentials[1]}
                     if credentials else None)
            context = await browser.new_context(viewport=VIEWPORT, color_scheme="light",
                                                http_credentials=login)
            page = await context.new_page()
            board = Dashboard(page, base_url)

            def on_console(msg: Any) -> None:
                if msg.type == "error":
                    board.console_errors.append(f"{msg.text} ({msg.location})")

            def on_dialog(dialog: Any) -> None:
                board.dialogs.append(f"{dialog.type}: {dialog.message}")
                asyncio.ensure_future(dialog.dismiss())

            page.on("console", on_console)
            page.on("pageerror", lambda exc: board.console_errors.append(f"uncaught: {exc}"))
            page.on("dialog", on_dialog)
            yield board
        finally:
            await browser.close()


async def serve_json(routes: dict[str, Any]) -> tuple[str, Any]:
    """A tiny HTTP server answering GET ``path`` with the JSON ``routes[path]`` (404
    otherwise): a stand-in for a framework's API.  Returns (url, runner to clean up)."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        if request.path not in routes:
            return web.json_response({"message": "not found"}, status=404)
        return web.json_response(routes[request.path])

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return f"http://127.0.0.1:{port}", runner
