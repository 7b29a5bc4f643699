"""First use in Debian's Chromium, at 1440 px and at 390 px: /docs offline, the chart library's
bytes on the wire, and the dashboard defects a new user met (repeated date ticks, an amount
spilling out of its card, a cut top-plans column, start after end, a range in the future)."""

import datetime as dt
import gzip
import json

import plotly
import pytest
from sqlalchemy.orm import Session

from app.api.assets import PLOTLY_JS
from app.models.analytics import EventType
from app.models.order import OrderStatus
from app.services.analytics import record_event
from tests.factories import create_order, create_plan, create_user
from tests.web.conftest import PHONE, WIDE, new_context
from tests.web.seed import range_figures, seed_shop
from tests.web.test_dashboard_browser import money, shown_kpis

pytestmark = pytest.mark.single_db

# Three large payments today on top of the shared history: wide amounts in four currencies.
BIG_ORDERS = [("Global 50 GB, 365 days", 2_467_031, "USD"), ("Europe 50 GB, 365 days", 1_234_567, "EUR"), ("UK 50 GB", 987_654, "GBP")]
VIEWPORTS = [pytest.param(WIDE, id="1440px"), pytest.param(PHONE, id="390px")]


def SEED_SHOP(session: Session, today: dt.date) -> None:  # noqa: N802 - the name live_server looks for
    seed_shop(session, today)
    noon = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    for name, price, currency in BIG_ORDERS:
        plan = create_plan(session, name=name, price_minor_units=price, currency=currency)
        buyer = create_user(session, signup=False)
        order = create_order(session, user=buyer, plan=plan, status=OrderStatus.PAID)
        common = {"user_id": buyer.id, "order_id": order.id, "plan_id": plan.id, "occurred_at": noon, "amount_minor_units": price, "currency": currency}
        record_event(session, EventType.CHECKOUT_STARTED, **common)
        record_event(session, EventType.PAYMENT_SUCCEEDED, **common)


def expected_revenue(first_days_ago: int) -> dict[str, int]:
    revenue = dict(range_figures(first_days_ago, 0)["revenue"])
    for _, price, currency in BIG_ORDERS:
        revenue[currency] = revenue.get(currency, 0) + price
    return revenue


@pytest.fixture
def page_at(browser, live_server, admin_state):
    """page_at(viewport): an admin's page of that size; fails the test on any script error."""
    contexts = []

    def open_page(viewport: dict):
        context = new_context(browser, live_server, viewport=viewport, storage_state=admin_state)
        contexts.append(context)
        page = context.new_page()
        page.script_errors = []
        page.on("pageerror", lambda exc: page.script_errors.append(f"pageerror: {exc}"))
        page.on("console", lambda msg: page.script_errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.api_calls = []
        page.on("request", lambda r: page.api_calls.append(r.url) if "/admin/analytics/" in r.url else None)
        return page

    yield open_page
    for context in contexts:
        errors = [e for page in context.pages for e in page.script_errors]
        context.close()
        assert errors == [], errors


def day(today: dt.date, days_ago: int) -> str:
    return (today - dt.timedelta(days=days_ago)).isoformat()


def wait_loaded(page) -> None:
    page.locator('#dashboard[aria-busy="false"]').wait_for()
    page.locator('#projection-body[aria-busy="false"]').wait_for()


def width_name(viewport: dict) -> str:
    return f"{viewport['width']}px"


# ---- /docs and /redoc without a network ------------------------------------------------------


def offline(page) -> list[str]:
    """Refuse every request that leaves 127.0.0.1, and list what was asked for."""
    refused = []

    def handle(route):
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", handle)
    return refused


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_docs_render_every_operation_offline(browser, live_server, viewport, screenshot):
    context = new_context(browser, live_server, viewport=viewport)
    page = context.new_page()
    refused = offline(page)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    spec = page.request.get("/openapi.json").json()
    operations = sorted((method.upper(), path) for path, item in spec["paths"].items() for method in item)
    assert ("POST", "/orders/{order_id}/payment-intent/confirm") in operations

    page.goto("/docs")
    page.locator(".opblock").first.wait_for()
    shown = sorted(
        (block.locator(".opblock-summary-method").inner_text(), block.locator(".opblock-summary-path").get_attribute("data-path"))
        for block in page.locator(".opblock").all()
    )
    assert shown == operations
    assert page.locator(".info .title").inner_text().startswith("eSIM shop")
    screenshot(page, f"docs-offline-{width_name(viewport)}", full_page=False)

    page.goto("/redoc")
    page.get_by_role("heading", name="eSIM shop").first.wait_for()
    # ReDoc's side menu has an entry per operation, under its tag.
    menu = page.locator("li[data-item-id*='/operation/']")
    menu.first.wait_for(state="attached")
    assert menu.count() == len(operations)
    screenshot(page, f"redoc-offline-{width_name(viewport)}", full_page=False)
    # ReDoc's "API docs by Redocly" badge points at cdn.redoc.ly; the page's CSP blocks it (that
    # is the one console message) and nothing else is asked of another host.
    assert refused == []
    assert [e for e in errors if "cdn.redoc.ly/redoc/logo-mini.svg" not in e] == []
    context.close()


# ---- the chart library on the wire -------------------------------------------------------------


def test_plotly_costs_under_1_5_mb_on_the_wire(page_at, today, screenshot):
    page = page_at(WIDE)
    with page.expect_response(lambda r: "/static/vendor/plotly.min.js" in r.url) as info:
        page.goto("/admin/analytics")
    response = info.value
    response.finished()
    wire = response.request.sizes()["responseBodySize"]
    expected = len(gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=9, mtime=0))
    assert response.url.endswith(f"?v={plotly.__version__}")
    assert (response.headers["content-encoding"], int(response.headers["content-length"]), wire) == ("gzip", expected, expected)
    assert wire < 1_500_000
    print(f"plotly.min.js on the wire: {wire:,} bytes (uncompressed {PLOTLY_JS.stat().st_size:,})")
    wait_loaded(page)
    assert page.evaluate("typeof window.Plotly") == "object"
    assert page.locator("#revenue-chart .main-svg").first.is_visible()


# ---- date ticks ------------------------------------------------------------------------------


def tick_labels(page, chart_id: str) -> list[str]:
    return [t.text_content() for t in page.locator(f"#{chart_id} .xaxislayer-above .xtick text").all()]


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("days", [1, 3, 7, 14])
def test_date_ticks_name_each_day_once(page_at, today, viewport, days, screenshot):
    page = page_at(viewport)
    page.goto(f"/admin/analytics?start_date={day(today, days - 1)}&end_date={day(today, 0)}")
    wait_loaded(page)
    for chart in ("revenue-chart", "events-chart"):
        width = page.locator(f"#{chart}").evaluate("e => e.clientWidth")
        step = -(-days // max(2, width // 70))
        expected = [(today - dt.timedelta(days=n)).strftime("%b %d") for n in range(days - 1, -1, -step)]
        assert tick_labels(page, chart) == expected, chart
    page.locator("#revenue-chart").scroll_into_view_if_needed()
    screenshot(page, f"ticks-{days}-days-{width_name(viewport)}", full_page=False)


# ---- amounts inside their card -----------------------------------------------------------------


def overflowing(page, selector: str) -> list[str]:
    """Elements whose text is wider than their box or that reach past their card's padding."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].filter((el) => {
            const card = el.closest('.card').getBoundingClientRect();
            const box = el.getBoundingClientRect();
            return el.scrollWidth > el.clientWidth || box.right > card.right - 8 || box.left < card.left + 8;
        }).map((el) => el.textContent)""",
        selector,
    )


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_revenue_amounts_stay_inside_their_card(page_at, today, viewport, screenshot):
    page = page_at(viewport)
    types = "&".join(f"event_types={t}" for t in ("checkout_started", "payment_succeeded", "esim_activated"))
    page.goto(f"/admin/analytics?start_date={day(today, 29)}&end_date={day(today, 0)}&{types}")
    wait_loaded(page)
    revenue = expected_revenue(29)
    shown = shown_kpis(page)
    assert {c: shown[c] for c in revenue} == {c: (v, money(v, c)) for c, v in revenue.items()}
    # 2,467,031 cents today + 15 × 1,999 + 10 × 999 of the history's 30 days.
    assert money(revenue["USD"], "USD") == "$25,070.06"
    assert overflowing(page, ".kpi .kpi-value, .kpi .kpi-change, .kpi .kpi-label") == []
    page.locator("#kpis").scroll_into_view_if_needed()
    screenshot(page, f"kpis-wide-amounts-{width_name(viewport)}", full_page=False)


# ---- top plans on a phone ----------------------------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_top_plans_show_every_column_without_scrolling(page_at, today, viewport, screenshot):
    page = page_at(viewport)
    page.goto(f"/admin/analytics?start_date={day(today, 29)}&end_date={day(today, 0)}")
    wait_loaded(page)
    scroller = page.locator("#top-plans .table-scroll")
    assert scroller.evaluate("e => e.scrollWidth <= e.clientWidth")
    frame = scroller.bounding_box()
    cells = page.locator("#top-plans-table tbody td, #top-plans-table thead th").all()
    assert len(cells) == 4 + 3 * page.locator("#top-plans-table tbody tr").count()
    for cell in cells:
        box = cell.bounding_box()
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 0.5, cell.inner_text()
    first = page.locator("#top-plans-table tbody tr").first
    assert first.locator("th").inner_text() == "Global 50 GB, 365 days"
    assert first.locator("td").nth(1).inner_text() == money(2_467_031, "USD")
    page.locator("#top-plans").scroll_into_view_if_needed()
    screenshot(page, f"top-plans-{width_name(viewport)}", full_page=False)


# ---- start after end, and a range in the future -------------------------------------------------


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_start_after_end_names_the_fields_and_asks_nothing(page_at, today, viewport, screenshot):
    page = page_at(viewport)
    start, end = today - dt.timedelta(days=2), today - dt.timedelta(days=9)
    page.goto(f"/admin/analytics?start_date={start}&end_date={end}")
    page.locator("#error").wait_for()
    message = (
        f"The start date (From, {start:%b} {start.day}, {start.year}) is after the end date (To, {end:%b} {end.day}, {end.year}). "
        "Choose a From date on or before the To date."
    )
    assert page.locator("#error-message").inner_text() == message
    assert not page.get_by_role("button", name="Try again").is_visible()
    assert [page.locator(f"#{f}").get_attribute("aria-invalid") for f in ("start-date", "end-date")] == ["true", "true"]
    assert page.get_by_label("From", exact=True).get_attribute("aria-describedby") == "error-message"
    assert not page.locator("#kpis").is_visible()
    assert [u for u in page.api_calls if "/overview" in u or "/timeseries" in u] == []
    screenshot(page, f"start-after-end-{width_name(viewport)}", full_page=False)

    # Correcting the dates in the form brings the figures back and clears the marks.
    page.get_by_label("From", exact=True).fill(day(today, 9))
    page.get_by_label("To", exact=True).fill(day(today, 2))
    page.get_by_role("button", name="Apply").click()
    wait_loaded(page)
    assert not page.locator("#error").is_visible()
    assert page.locator("#start-date").get_attribute("aria-invalid") == "false"
    assert shown_kpis(page)["user_signup"][0] == range_figures(9, 2)["counts"]["user_signup"]

    # And typing a wrong pair again is caught in the page, before any request.
    calls = len(page.api_calls)
    page.get_by_label("From", exact=True).fill(day(today, 1))
    page.get_by_label("To", exact=True).fill(day(today, 3))
    page.get_by_role("button", name="Apply").click()
    page.locator("#error").wait_for()
    assert page.locator("#error-message").inner_text().startswith("The start date (From, ")
    assert len(page.api_calls) == calls


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_future_range_says_there_is_no_data_yet(page_at, today, viewport, screenshot):
    page = page_at(viewport)
    start, end = today + dt.timedelta(days=30), today + dt.timedelta(days=60)
    page.goto(f"/admin/analytics?start_date={start}&end_date={end}")
    page.locator('#dashboard[data-state="future"]').wait_for()
    assert page.locator("#status").inner_text() == (
        f"No data yet: the range starts on {start:%b} {start.day}, {start.year}, after today ({today:%b} {today.day}, {today.year}), "
        "so there is nothing to show or compare. Choose a range that starts today or earlier."
    )
    assert not page.locator("#kpis").is_visible() and not page.locator("#csv-link").is_visible()
    assert "-100" not in page.locator("body").inner_text()
    assert [u for u in page.api_calls if "/overview" in u or "/timeseries" in u] == []
    assert page.locator("#start-date").get_attribute("aria-invalid") == "true"
    screenshot(page, f"future-range-{width_name(viewport)}", full_page=False)

    page.get_by_role("button", name="Last 7 days").click()
    wait_loaded(page)
    assert page.locator("#dashboard").get_attribute("data-state") == "ready"
    assert json.loads(page.locator("#kpis [data-kpi='user_signup'] .kpi-value").get_attribute("data-value")) == (
        range_figures(6, 0)["counts"]["user_signup"]
    )
