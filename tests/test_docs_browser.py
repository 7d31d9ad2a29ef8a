"""The docs page renders in headless Chromium with no request leaving the machine."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from werkzeug.serving import make_server

pytestmark = pytest.mark.browser

CHROMIUM = (
    os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
)


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (install Debian's chromium)")
def test_docs_page_renders_offline(served: str) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    requested: list[str] = []
    left_the_machine: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()

            def guard(route: object) -> None:
                url = route.request.url  # type: ignore[attr-defined]
                requested.append(url)
                if urlsplit(url).hostname not in {"127.0.0.1", "localhost"}:
                    left_the_machine.append(url)
                    route.abort()  # type: ignore[attr-defined]
                else:
                    route.continue_()  # type: ignore[attr-defined]

            page.route("**/*", guard)
            page.goto(f"{served}/api/v1/docs", wait_until="networkidle")
            page.wait_for_selector(".opblock", timeout=15_000)
            summaries = page.locator(".opblock-summary-path").all_inner_texts()
            title = page.locator(".info .title").inner_text()
        finally:
            browser.close()

    assert "Calendar Connections" in title
    rendered = {text.replace("\u200b", "").strip() for text in summaries}
    for path in (
        "/crm/calendar/connections/google/authorize",
        "/crm/calendar/connections/outlook/callback",
        "/crm/calendar/connections/status",
        "/crm/calendar/connections/{provider}/disconnect",
    ):
        assert path in rendered
    assert any(url.endswith("/api/v1/openapi.json") for url in requested)
    assert left_the_machine == []
