"""The OpenAPI page renders offline, from files the server itself serves."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Request

from tests.conftest import RunningServer
from tests.web.test_dashboard import browser  # noqa: F401  (fixture)


@pytest.mark.browser
def test_docs_page_renders_without_network(
    server: RunningServer,
    browser: Browser,  # noqa: F811
) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def record(request: Request) -> None:
        if not request.url.startswith(server.http_url):
            outside.append(request.url)

    page.on("request", record)
    page.goto(f"{server.http_url}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    assert "citymesh" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("text=/render", timeout=15_000)
    assert outside == []
    page.close()


def test_docs_assets_are_served(server: RunningServer) -> None:
    html = httpx.get(f"{server.http_url}/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn." not in html
    script = httpx.get(
        f"{server.http_url}/static/vendor/swagger-ui/swagger-ui-bundle.js"
    )
    assert script.status_code == 200
    assert len(script.content) > 100_000
