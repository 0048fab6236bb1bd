"""The dashboard in Chromium against a real data centre: live values and charts."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from citymesh.gateway.sources import open_source
from citymesh.protocol.messages import (
    Birth,
    DeviceInfo,
    ReadingsBatch,
    SensorInfo,
    SeriesPoints,
    Status,
    encode,
)
from citymesh.protocol.names import series_name
from citymesh.protocol.topics import Channel, topic_for
from tests.conftest import RunningServer

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ROOMS_GATEWAY = "gw-rooms"
STREET_GATEWAY = "gw-street"
# Device names come from gateways, so two of them carry markup that must show
# as text: one would bold a word, the other would run script if inserted as HTML.
ROOM_NAMES = {
    "room-1": "Room 1.01",
    "room-2": "Room <b>2.02</b>",
    "room-3": "Lab 3",
}
COUNTER_NAME = 'Gate <img src=x onerror="window.injected = true">'
HISTORY_MINUTES = 120
TIMEOUT_MS = 15_000


def _birth(tenant: str, gateway: str, site: str, devices: list[DeviceInfo]) -> bytes:
    now_ms = int(time.time() * 1000)
    birth = Birth(
        v=1, tenant=tenant, gateway=gateway, site=site, boot_ms=now_ms, devices=devices
    )
    return encode(birth)


def _recorded(source: str, quantity: str, device: str, count: int) -> list[float]:
    """The first `count` recorded values of one sensor of a shipped data set."""
    devices = [device] if source != "traffic" else None
    values = [
        r.value
        for r in open_source(source, devices=devices).readings()
        if r.quantity == quantity and r.device == device
    ]
    return values[:count]


def _rooms_batch(tenant: str, now_ms: int) -> ReadingsBatch:
    """The UCI room's recordings, one per room, shifted to end now."""
    start_ms = now_ms - HISTORY_MINUTES * 60_000
    series = []
    for index, device in enumerate(ROOM_NAMES):
        values = _recorded("occupancy", "co2", f"room-{index + 1}", HISTORY_MINUTES)
        co2 = [(start_ms + m * 60_000, value) for m, value in enumerate(values)]
        series.append(SeriesPoints(device=device, quantity="co2", points=co2))
    values = _recorded("occupancy", "temperature", "room-1", HISTORY_MINUTES)
    temperature = [(start_ms + m * 60_000, value) for m, value in enumerate(values)]
    series.append(
        SeriesPoints(device="room-1", quantity="temperature", points=temperature)
    )
    return ReadingsBatch(
        v=1,
        tenant=tenant,
        gateway=ROOMS_GATEWAY,
        site="hq",
        seq=0,
        sent_ms=now_ms,
        series=series,
    )


def _street_batch(tenant: str, now_ms: int) -> ReadingsBatch:
    hour_ms = 3_600_000
    first_hour = now_ms - now_ms % hour_ms - 24 * hour_ms
    # Recorded hourly counts: I-94 vehicles and Melbourne sensor 1 pedestrians.
    vehicle_counts = _recorded("traffic", "vehicles", "i94-atr301", 24)
    pedestrian_counts = _recorded("pedestrian", "pedestrians", "ped-1", 24)
    vehicles = [(first_hour + h * hour_ms, v) for h, v in enumerate(vehicle_counts)]
    pedestrians = [
        (first_hour + h * hour_ms, v) for h, v in enumerate(pedestrian_counts)
    ]
    return ReadingsBatch(
        v=1,
        tenant=tenant,
        gateway=STREET_GATEWAY,
        site="street",
        seq=0,
        sent_ms=now_ms,
        series=[
            SeriesPoints(device="gate-1", quantity="vehicles", points=vehicles),
            SeriesPoints(device="gate-1", quantity="pedestrians", points=pedestrians),
        ],
    )


def _publish_fleet(server: RunningServer) -> None:
    tenant = server.tenant
    rooms = [
        DeviceInfo(
            device=device,
            name=name,
            sensors=[SensorInfo(quantity="co2"), SensorInfo(quantity="temperature")],
        )
        for device, name in ROOM_NAMES.items()
    ]
    counter = DeviceInfo(
        device="gate-1",
        name=COUNTER_NAME,
        sensors=[
            SensorInfo(quantity="vehicles", step_s=3600),
            SensorInfo(quantity="pedestrians", step_s=3600),
        ],
    )
    server.publish_raw(
        topic_for(tenant, ROOMS_GATEWAY, Channel.BIRTH),
        [_birth(tenant, ROOMS_GATEWAY, "hq", rooms)],
    )
    server.publish_raw(
        topic_for(tenant, STREET_GATEWAY, Channel.BIRTH),
        [_birth(tenant, STREET_GATEWAY, "street", [counter])],
    )
    now_ms = int(time.time() * 1000) - 60_000
    server.publish(_rooms_batch(tenant, now_ms), _street_batch(tenant, now_ms))
    server.wait_stored(accepted=2)


def _wait_for_names(server: RunningServer) -> None:
    """Wait until the births are applied, so the page shows device names."""
    deadline = time.monotonic() + 15
    expected = {*ROOM_NAMES.values(), COUNTER_NAME}
    while True:
        sensors = httpx.get(f"{server.http_url}/api/v1/sensors", timeout=5).json()
        names = {sensor["device_name"] for sensor in sensors}
        if expected <= names:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"device names never reached the API: {sorted(names)}")
        time.sleep(0.05)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A laptop-sized page in a fixed locale, failing the test on script errors."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        locale="en-US",
        timezone_id="Europe/Berlin",
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console error: {message.text}")

    page.on("console", on_console)
    yield page
    context.close()
    assert errors == []


def _value_cell(page: Page, series: str) -> str:
    return page.locator(f'tr[data-series="{series}"] .col-value').inner_text()


def test_dashboard_live_value_and_charts(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    tenant = server.tenant
    _publish_fleet(server)
    _wait_for_names(server)

    page.goto(f"{server.http_url}/")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#connection[data-state=open]")
    # Survives only as long as the page is not reloaded.
    page.evaluate("window.loadMarker = 'first load'")

    # The default selection is a CO2 sensor, shown in the history chart.
    selected = page.locator("#sensor-rows tr[aria-selected=true]")
    series = selected.get_attribute("data-series")
    assert series is not None
    assert series.endswith(".co2")
    device = series.split(".")[3]
    room = f"room-{list(ROOM_NAMES).index(device) + 1}"
    first_value = _recorded("occupancy", "co2", room, HISTORY_MINUTES)[-1]
    assert _value_cell(page, series) == f"{first_value:,.0f} ppm"
    age = page.locator(f'tr[data-series="{series}"] .col-age').inner_text()
    assert re.fullmatch(r"\d+ (s|min) ago", age), age
    page.wait_for_function(
        "document.getElementById('history-chart').data?.[0]?.y.length > 0"
    )

    # A new reading through the broker reaches the table and the history chart.
    new_ms = int(time.time() * 1000)
    live_batch = ReadingsBatch(
        v=1,
        tenant=tenant,
        gateway=ROOMS_GATEWAY,
        site="hq",
        seq=1,
        sent_ms=new_ms,
        series=[SeriesPoints(device=device, quantity="co2", points=[(new_ms, 1234.0)])],
    )
    server.publish(live_batch)
    page.wait_for_function(
        "([series]) => document.querySelector(`tr[data-series='${series}'] .col-value`)"
        ".textContent === '1,234 ppm'",
        arg=[series],
    )
    page.wait_for_function(
        "document.getElementById('history-chart').data[0].y.at(-1) === 1234"
    )
    assert page.evaluate("window.loadMarker") == "first load"
    age = page.locator(f'tr[data-series="{series}"] .col-age').inner_text()
    assert re.fullmatch(r"\d s ago", age), age

    # One CO2 trace per room device, named by the device names as text.
    page.wait_for_function("document.getElementById('co2-chart').data?.length === 3")
    legend = sorted(page.locator("#co2-chart .legendtext").all_text_contents())
    assert legend == sorted(ROOM_NAMES.values())
    values_per_trace = page.evaluate(
        "document.getElementById('co2-chart').data"
        ".map((trace) => trace.y.filter((value) => value !== null).length)"
    )
    assert len(values_per_trace) == 3
    assert min(values_per_trace) > 0

    # Counts per hour: one trace per counter in each chart.
    for chart in ("vehicles-chart", "pedestrians-chart"):
        page.wait_for_function(f"document.getElementById('{chart}').data?.length === 1")
        bars = page.evaluate(f"document.getElementById('{chart}').data[0].y.length")
        assert bars == 24
        legend = page.locator(f"#{chart} .legendtext").all_text_contents()
        assert legend == [COUNTER_NAME]

    # Markup in gateway-supplied names stays text.
    room_2 = series_name(tenant, "hq", ROOMS_GATEWAY, "room-2", "co2")
    assert (
        page.locator(f'tr[data-series="{room_2}"] .col-device').inner_text()
        == ROOM_NAMES["room-2"]
    )
    assert page.locator("#sensor-rows b").count() == 0
    assert page.locator("img").count() == 0
    assert page.evaluate("window.injected") is None

    assert page.locator("#gateways").inner_text() == "Gateways online: 2 of 2"

    # A status report shows up in the gateway panel through the live stream.
    status = Status(
        v=1,
        tenant=tenant,
        gateway=ROOMS_GATEWAY,
        sent_ms=int(time.time() * 1000),
        backlog=4321,
        backlog_oldest_age_s=90.0,
        readings_dropped=17,
        reconnects=3,
    )
    server.publish_raw(
        topic_for(tenant, ROOMS_GATEWAY, Channel.STATUS), [encode(status)]
    )
    row = f'#gateway-rows tr[data-gateway="{tenant}/{ROOMS_GATEWAY}"]'
    page.wait_for_function(
        "([row]) => document.querySelector(`${row} .col-backlog`)"
        "?.textContent === '4,321'",
        arg=[row],
    )
    assert page.locator(f"{row} .col-oldest").inner_text() == "90 s"
    assert page.locator(f"{row} .col-dropped").inner_text() == "17"
    assert page.locator(f"{row} .col-reconnects").inner_text() == "3"
    assert page.locator(f"{row} .col-ack").inner_text() == "never"
    assert page.locator(f"{row} .col-clock").inner_text().endswith(" s")

    screenshot = tmp_path / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    shutil.copyfile(screenshot, "/tmp/dashboard.png")


def test_dashboard_zoom_fetches_bounded_points(
    server: RunningServer, page: Page
) -> None:
    _publish_fleet(server)
    _wait_for_names(server)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{server.http_url}/")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function(
        "document.getElementById('history-chart').data?.[0]?.y.length > 0"
    )
    series = page.locator("#sensor-rows tr[aria-selected=true]").get_attribute(
        "data-series"
    )
    assert series is not None
    requests.clear()

    # A zoom to the last 30 minutes requests raw points of that range only.
    page.evaluate(
        """async () => {
          const chart = document.getElementById('history-chart');
          const pad = (n) => String(n).padStart(2, '0');
          const local = (ms) => {
            const d = new Date(ms);
            return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
              `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
          };
          const end = Date.now();
          await Plotly.relayout(chart, {
            'xaxis.range[0]': local(end - 30 * 60000),
            'xaxis.range[1]': local(end),
          });
        }"""
    )
    page.wait_for_function(
        "!document.getElementById('history-note').textContent.includes('averaged')"
    )
    zoomed = [url for url in requests if "/points?" in url]
    assert len(zoomed) == 1
    query = httpx.URL(zoomed[0]).params
    span_s = (int(query["until"]) - int(query["from"])) / 1000
    assert 1790 <= span_s <= 1810
    assert "step" not in query
    points = page.evaluate("document.getElementById('history-chart').data[0].y.length")
    # The newest stored point is two minutes old, one point a minute.
    assert 27 <= points <= 29
    pressed = page.locator(".range-buttons button[aria-pressed=true]")
    assert pressed.count() == 0

    # The 7d preset needs a step that keeps the response under 1000 points.
    requests.clear()
    page.click(".range-buttons button[data-range='604800']")
    page.wait_for_function(
        "document.getElementById('history-note').textContent.includes('averaged')"
    )
    week = [url for url in requests if "/points?" in url]
    assert len(week) == 1
    query = httpx.URL(week[0]).params
    span_s = (int(query["until"]) - int(query["from"])) / 1000
    assert span_s == 604800
    assert int(query["step"]) == 605
    assert query["agg"] == "avg"
    assert (
        page.evaluate("document.getElementById('history-chart').data[0].y.length")
        <= 1001
    )


def test_history_chart_breaks_line_at_gap(server: RunningServer, page: Page) -> None:
    tenant = server.tenant
    rooms = [
        DeviceInfo(device=device, name=name, sensors=[SensorInfo(quantity="co2")])
        for device, name in ROOM_NAMES.items()
    ]
    server.publish_raw(
        topic_for(tenant, ROOMS_GATEWAY, Channel.BIRTH),
        [_birth(tenant, ROOMS_GATEWAY, "hq", rooms)],
    )
    now_ms = int(time.time() * 1000) - 60_000
    full = _rooms_batch(tenant, now_ms)
    # Half an hour without readings in the middle, as during a gateway outage.
    first = now_ms - HISTORY_MINUTES * 60_000
    hole = (first + 40 * 60_000, first + 70 * 60_000)
    series = [
        SeriesPoints(
            device=item.device,
            quantity=item.quantity,
            points=[p for p in item.points if not hole[0] <= p[0] < hole[1]],
        )
        for item in full.series
        if item.quantity == "co2"
    ]
    server.publish(full.model_copy(update={"series": series}))
    server.wait_stored(accepted=1)

    page.goto(f"{server.http_url}/")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_function(
        "document.getElementById('history-chart').data?.[0]?.y.length > 0"
    )
    # Over 6 hours the chart shows raw points, which have no nulls of their own.
    page.click(".range-buttons button[data-range='21600']")
    page.wait_for_function(
        "document.getElementById('history-chart').data[0].y.length < 200"
    )
    values = page.evaluate("document.getElementById('history-chart').data[0].y")

    stored = HISTORY_MINUTES - 30
    assert len(values) == stored + 1
    assert values.count(None) == 1
    assert values[40] is None
