"""The support pages and the dashboard's finance and stock panels, in Debian's Chromium."""

import datetime as dt

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models.order import Order, OrderStatus
from app.models.plan import Plan
from app.services import fx
from app.services.refunds import ProviderRefund, apply_refund
from tests.factories import create_profiles
from tests.web.seed import HISTORY_DAYS, orders_on
from tests.web.test_dashboard_browser import money, wait_loaded

pytestmark = pytest.mark.single_db


@pytest.fixture(scope="module")
def finance_shop(engine, live_server):
    """The seeded shop plus: ECB rates, paid orders paid 2 hours ago, one refund, free stock for one plan."""
    with Session(engine) as session:
        fx.load_rates(session, fx.read_ecb_file(fx.BUNDLED_FILE))
        two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
        session.execute(update(Order).where(Order.status.in_([OrderStatus.PAID, OrderStatus.ACTIVATED])).values(paid_at=two_hours_ago))
        refunded = session.scalar(select(Order).where(Order.status == OrderStatus.ACTIVATED).order_by(Order.id.desc()).limit(1))
        apply_refund(session, refunded, ProviderRefund("re_browser_1", refunded.amount_minor_units, refunded.currency, "succeeded"),
                     provider="sandbox", source="admin")
        europe = session.scalar(select(Plan).where(Plan.name == "Europe 5 GB"))
        create_profiles(session, plan=europe, count=5)
        session.commit()
        return {"refunded_id": refunded.id}


def stuck_orders_in_seed() -> int:
    """Paid and never activated: every such order of the seed plan (all paid 2 hours ago here)."""
    return sum(1 for days_ago in range(HISTORY_DAYS) for o in orders_on(days_ago) if o.paid and not o.activated)


def test_support_page_filters_searches_and_opens_a_timeline(admin_page, finance_shop, screenshot):
    admin_page.goto("/admin")
    admin_page.get_by_role("link", name="Orders and support").click()
    admin_page.wait_for_url("**/admin/orders")
    stuck = admin_page.locator('.problem-link[data-problem="paid_not_activated"] .problem-count')
    assert int(stuck.inner_text().replace(",", "")) == stuck_orders_in_seed()
    assert admin_page.locator('.problem-link[data-problem="refunded"] .problem-count').inner_text() == "1"
    assert admin_page.locator("#orders-table tbody tr").count() == 50  # the first page
    screenshot(admin_page, "support-orders")

    admin_page.locator('.problem-link[data-problem="paid_not_activated"]').click()
    admin_page.wait_for_url("**problem=paid_not_activated**")
    statuses = admin_page.locator("#orders-table tbody .status-badge").all_inner_texts()
    assert statuses and set(statuses) == {"paid"}
    heading = admin_page.locator("#results-heading").inner_text()
    assert heading.endswith(f"of {stuck_orders_in_seed()} orders")

    admin_page.get_by_role("searchbox", name="Search").fill(str(finance_shop["refunded_id"]))
    admin_page.get_by_label("Problem", exact=True).select_option("")
    admin_page.get_by_role("button", name="Search").click()
    admin_page.wait_for_url(f"**q={finance_shop['refunded_id']}**")
    rows = admin_page.locator("#orders-table tbody tr")
    assert rows.count() == 1
    assert rows.locator(".status-badge").inner_text() == "refunded"
    screenshot(admin_page, "support-search-refunded")

    rows.locator("a").click()
    admin_page.wait_for_url(f"**/admin/orders/{finance_shop['refunded_id']}")
    kinds = admin_page.locator("#timeline-table tbody tr td:nth-child(3)").all_inner_texts()
    assert kinds == ["checkout_started", "payment_succeeded", "esim_activated", "payment_refunded", "refund"]
    screenshot(admin_page, "support-order-timeline")


def test_dashboard_shows_converted_totals_next_to_each_currency_and_the_stock(admin_page, finance_shop, today, screenshot):
    start, end = (today - dt.timedelta(days=29)).isoformat(), today.isoformat()
    admin_page.goto(f"/admin/analytics?start_date={start}&end_date={end}")
    wait_loaded(admin_page)
    admin_page.locator("#finance-converted").wait_for()
    api = admin_page.request.get(f"/admin/analytics/overview?start_date={start}&end_date={end}&currency=USD").json()
    converted = api["converted"]
    assert admin_page.locator("#finance-gross").inner_text() == money(converted["gross_revenue_minor_units"], "USD")
    assert admin_page.locator("#finance-net").inner_text() == money(converted["net_revenue_minor_units"], "USD")
    rows = {row.get_attribute("data-currency"): row.locator("td").all_inner_texts() for row in admin_page.locator("#finance-table tbody tr").all()}
    assert set(rows) == {"JPY", "USD"}
    assert rows["JPY"][0] == money(api["revenue"]["JPY"], "JPY")
    # The bundled ECB file ends before today: the panel says the rates are old.
    assert "days old" in admin_page.locator("#finance-note").inner_text()
    stock = {row.locator("th").inner_text(): row.locator("td").all_inner_texts() for row in admin_page.locator("#stock-table tbody tr").all()}
    assert stock["Europe 5 GB"][0] == "5" and stock["Europe 5 GB"][3] == ""
    assert stock["Japan 3 GB"][3] == "Sold out"
    admin_page.locator("#finance").scroll_into_view_if_needed()
    screenshot(admin_page, "dashboard-finance-and-stock")
