"""The admin dashboard in Debian's Chromium against a real uvicorn server with known data."""

import csv
import datetime as dt
import io

import pytest
from babel.numbers import format_currency
from playwright.sync_api import expect

from tests.web.conftest import PHONE, login_through_pages, new_context
from tests.web.seed import day_figures, range_figures

pytestmark = pytest.mark.single_db

TYPES = ["user_signup", "checkout_started", "payment_succeeded", "esim_activated"]


def money(minor_units: int, currency: str) -> str:
    """What en-US shows for an amount: worked out by Babel, the page uses the browser's Intl."""
    decimals = {"JPY": 0}.get(currency, 2)
    return format_currency(minor_units / 10**decimals, currency, locale="en_US")


def wait_loaded(page) -> None:
    page.locator('#dashboard[aria-busy="false"]').wait_for()
    page.locator('#projection-body[aria-busy="false"]').wait_for()


def open_dashboard(page, query: str = "") -> None:
    page.goto(f"/admin/analytics{query}")
    wait_loaded(page)


def shown_kpis(page) -> dict:
    """Counts and revenue as the KPI cards show them: {key: (raw value, text)}."""
    shown = {}
    for card in page.locator("[data-kpi]").all():
        key = card.get_attribute("data-kpi")
        if key == "revenue":
            for row in card.locator("li[data-currency]").all():
                value = row.locator(".kpi-value")
                shown[row.get_attribute("data-currency")] = (int(value.get_attribute("data-value")), value.inner_text())
        else:
            value = card.locator(".kpi-value")
            shown[key] = (int(value.get_attribute("data-value")), value.inner_text())
    return shown


def expected_kpis(figures: dict) -> dict:
    expected = {t: (n, f"{n:,}") for t, n in figures["counts"].items()}
    expected.update({c: (amount, money(amount, c)) for c, amount in figures["revenue"].items()})
    return expected


def day(today: dt.date, days_ago: int) -> str:
    return (today - dt.timedelta(days=days_ago)).isoformat()


def test_login_returns_to_the_dashboard_and_kpis_equal_the_api(browser, live_server, today, screenshot):
    context = new_context(browser, live_server)
    page = context.new_page()
    start, end = day(today, 13), day(today, 0)
    login_through_pages(page, live_server, "admin@shop.test", f"/admin/analytics?start_date={start}&end_date={end}", screenshot)
    wait_loaded(page)

    api = page.request.get(f"/admin/analytics/overview?start_date={start}&end_date={end}").json()
    shown = shown_kpis(page)
    assert {t: shown[t] for t in TYPES} == {t: (api["counts"][t], f"{api['counts'][t]:,}") for t in TYPES}
    assert {c: shown[c] for c in api["revenue"]} == {c: (v, money(v, c)) for c, v in api["revenue"].items()}
    # And both equal the seeded history, counted here without the app.
    assert shown == expected_kpis(range_figures(13, 0))
    assert set(api["revenue"]) == {"USD", "JPY"}

    for name, ratio in api["conversion"].items():
        shown_ratio = page.locator(f'[data-ratio="{name}"]')
        assert float(shown_ratio.get_attribute("data-value")) == pytest.approx(ratio)
        assert shown_ratio.inner_text().startswith(f"{ratio:.1%}")
    signups_now, signups_before = api["counts"]["user_signup"], api["previous"]["counts"]["user_signup"]
    change = page.locator('[data-kpi="user_signup"] .kpi-change')
    assert int(change.get_attribute("data-previous")) == signups_before
    assert change.inner_text() == f"▲ +{(signups_now - signups_before) / signups_before:.1%} vs previous 14 days"
    assert page.locator("#start-date").input_value() == start
    assert page.locator("#end-date").input_value() == end

    top = page.locator("#top-plans-table tbody tr").all()
    assert [row.locator("th").inner_text() for row in top] == [p["plan_name"] for p in api["top_plans"]]
    assert [int(row.locator("td[data-value]").first.get_attribute("data-value")) for row in top] == [
        p["revenue_minor_units"] for p in api["top_plans"]
    ]
    screenshot(page, "dashboard-laptop-14-days")
    context.close()


def test_quick_range_changes_the_url_and_the_numbers(admin_page, today, screenshot):
    open_dashboard(admin_page)
    assert admin_page.get_by_role("button", name="30 days").get_attribute("aria-pressed") == "true"
    assert shown_kpis(admin_page) == expected_kpis(range_figures(29, 0))

    admin_page.get_by_role("button", name="Last 7 days").click()
    wait_loaded(admin_page)
    assert admin_page.url.endswith(f"/admin/analytics?start_date={day(today, 6)}&end_date={day(today, 0)}")
    assert admin_page.get_by_role("button", name="Last 7 days").get_attribute("aria-pressed") == "true"
    assert shown_kpis(admin_page) == expected_kpis(range_figures(6, 0))
    assert admin_page.locator("#daily-table tbody tr").count() == 7
    screenshot(admin_page, "dashboard-quick-range-7-days")

    admin_page.get_by_role("button", name="90 days").click()
    wait_loaded(admin_page)
    assert admin_page.url.endswith(f"/admin/analytics?start_date={day(today, 89)}&end_date={day(today, 0)}")
    assert shown_kpis(admin_page) == expected_kpis(range_figures(89, 0))
    assert admin_page.locator("#daily-table tbody tr").count() == 90
    screenshot(admin_page, "dashboard-quick-range-90-days")

    admin_page.go_back()
    admin_page.go_back()
    wait_loaded(admin_page)
    assert admin_page.url.endswith("/admin/analytics")
    assert shown_kpis(admin_page) == expected_kpis(range_figures(29, 0))


def chart_traces(page, chart_id: str) -> list[dict]:
    return page.evaluate(f"document.getElementById('{chart_id}').data.map(t => ({{meta: t.meta || t.name, x: t.x, y: t.y}}))")


def test_a_chip_filters_the_chart(admin_page, today, screenshot):
    open_dashboard(admin_page, f"?start_date={day(today, 9)}&end_date={day(today, 0)}")
    assert [t["meta"] for t in chart_traces(admin_page, "events-chart")] == TYPES

    admin_page.get_by_role("button", name="Signups").click()
    wait_loaded(admin_page)
    admin_page.get_by_role("button", name="Checkout starts").click()
    wait_loaded(admin_page)
    assert "event_types=payment_succeeded&event_types=esim_activated" in admin_page.url
    traces = chart_traces(admin_page, "events-chart")
    assert [t["meta"] for t in traces] == ["payment_succeeded", "esim_activated"]
    assert traces[0]["x"] == [day(today, n) for n in range(9, -1, -1)]
    assert traces[0]["y"] == [day_figures(n)["counts"]["payment_succeeded"] for n in range(9, -1, -1)]
    assert [c.get_attribute("data-kpi") for c in admin_page.locator("[data-kpi]").all()] == [
        "payment_succeeded", "esim_activated", "revenue"
    ]
    assert admin_page.get_by_role("button", name="Signups").get_attribute("aria-pressed") == "false"
    screenshot(admin_page, "dashboard-chips-payments-activations")

    # The last chip left on stays on: an empty filter would silently mean "everything".
    admin_page.get_by_role("button", name="Payments").click()
    wait_loaded(admin_page)
    assert [t["meta"] for t in chart_traces(admin_page, "events-chart")] == ["esim_activated"]
    last_chip = admin_page.get_by_role("button", name="Activations")
    assert (last_chip.get_attribute("aria-pressed"), last_chip.is_enabled()) == ("true", False)

    admin_page.reload()
    wait_loaded(admin_page)
    assert [t["meta"] for t in chart_traces(admin_page, "events-chart")] == ["esim_activated"]
    summary = admin_page.locator("#events-summary").inner_text()
    assert f"Activations: {range_figures(9, 0)['counts']['esim_activated']}" in summary


def shown_projection(page) -> tuple[int, float, str]:
    revenue = page.locator('[data-figure="revenue"] dd')
    signups = page.locator('[data-figure="signups"] dd')
    return int(revenue.get_attribute("data-value")), float(signups.get_attribute("data-value")), revenue.inner_text()


def api_projection(page, **params) -> dict:
    """The answer the dashboard's own request gets (same cookie, same query)."""
    query = "&".join(f"{k}={v}" for k, v in {"method": "auto", **params}.items())
    response = page.request.get(f"/admin/analytics/projections?{query}")
    assert response.ok, response.text()
    return response.json()


def check_projection_panel(page, body: dict) -> None:
    currency, level = body["currency"], body["level"]
    revenue = body["totals"]["revenue"]
    shown = page.locator('[data-figure="revenue"] dd')
    assert int(shown.get_attribute("data-value")) == revenue["value"]
    assert shown.inner_text().splitlines()[0] == money(revenue["value"], currency)
    hint = shown.locator(".hint")
    assert hint.inner_text() == f"{level} % range {money(revenue['lower'], currency)} – {money(revenue['upper'], currency)}"
    signups = page.locator('[data-figure="signups"] dd')
    assert signups.inner_text().splitlines()[0] == f"{round(body['totals']['signups']['value']):,}"  # whole people
    # The method and its measured error in plain words, from the backtest in the same answer.
    chosen = body["backtest"]["revenue"]["methods"][body["models"]["revenue"]]
    words = page.locator("[data-accuracy]").inner_text()
    assert f"typically off by {round(chosen['wape'] * 100)} % per day" in words
    assert f"inside the {level} % band on {round(chosen['coverage'] * 100)} % of days" in words
    traces = {t["meta"]: t for t in chart_traces(page, "forecast-chart")}
    decimals = {"JPY": 0}.get(currency, 2)
    assert traces["history"]["x"] == [h["date"] for h in body["history"]]
    assert traces["history"]["y"] == pytest.approx([h["revenue_minor_units"] / 10**decimals for h in body["history"]])
    assert traces["forecast"]["y"] == pytest.approx([f["revenue_minor_units"] / 10**decimals for f in body["forecast"]])
    assert traces["band"]["y"] == pytest.approx([f["revenue_upper"] / 10**decimals for f in body["forecast"]])
    assert traces["lower"]["y"] == pytest.approx([f["revenue_lower"] / 10**decimals for f in body["forecast"]])


def test_the_projection_draws_the_forecast_band_and_names_its_error(admin_page, today, screenshot):
    open_dashboard(admin_page)
    body = api_projection(admin_page, window_days=14, horizon_days=7, currency="USD")
    assert body["last_complete_day"] == day(today, 1)  # today's partial day is never history
    assert len(body["history"]) == 14 and len(body["forecast"]) == 7
    check_projection_panel(admin_page, body)
    assert "null" not in admin_page.locator("#projection-body").inner_text()
    # Growth: revenue per day of the last 7 complete days against the 7 before, from the seed.
    admin_page.get_by_label("History to chart").select_option("7")
    wait_loaded(admin_page)
    assert "window_days=7" in admin_page.url
    history, earlier = range_figures(7, 1)["revenue"]["USD"], range_figures(14, 8)["revenue"]["USD"]
    growth = admin_page.locator('[data-figure="growth"] dd')
    assert float(growth.get_attribute("data-value")) == pytest.approx(history / earlier - 1)
    assert "revenue per day, last 7 days vs the 7 days before" in growth.inner_text()
    admin_page.locator("#projection").scroll_into_view_if_needed()
    screenshot(admin_page, "dashboard-projection-band")

    admin_page.get_by_role("radio", name="Signups").click()
    traces = {t["meta"]: t for t in chart_traces(admin_page, "forecast-chart")}
    body = api_projection(admin_page, window_days=7, horizon_days=7, currency="USD")
    assert traces["forecast"]["y"] == pytest.approx([f["signups"] for f in body["forecast"]])
    assert traces["history"]["y"] == [h["signups"] for h in body["history"]]
    assert admin_page.locator("[data-accuracy]").get_attribute("data-accuracy") == "signups"
    assert admin_page.get_by_role("radio", name="Signups").get_attribute("aria-checked") == "true"
    admin_page.get_by_role("radio", name="Revenue").click()

    admin_page.get_by_label("Forecast the next").select_option("30")
    wait_loaded(admin_page)
    check_projection_panel(admin_page, api_projection(admin_page, window_days=7, horizon_days=30, currency="USD"))
    admin_page.get_by_label("Currency", exact=True).select_option("JPY")
    wait_loaded(admin_page)
    assert admin_page.url.endswith("window_days=7&horizon_days=30&currency=JPY")
    check_projection_panel(admin_page, api_projection(admin_page, window_days=7, horizon_days=30, currency="JPY"))
    screenshot(admin_page, "dashboard-projection-7-30-jpy")


def test_the_projection_says_when_there_is_not_enough_data(admin_page, today, screenshot):
    # The real answer for a day 10 days after the seed's first event (59 days ago), served
    # to the page in place of today's: the panel's empty state.
    early = api_projection(admin_page, as_of=day(today, 49))
    assert early["note"] == "Not enough data"
    admin_page.route("**/admin/analytics/projections?*", lambda route: route.fulfill(json=early))
    open_dashboard(admin_page)
    state = admin_page.locator('[data-state="not-enough-data"]')
    assert state.inner_text().startswith("Not enough data")
    assert "at least 14 complete days since the shop's first event" in state.inner_text()
    screenshot(admin_page, "dashboard-projection-not-enough-data")


def test_the_csv_download_matches_the_table(admin_page, today, screenshot):
    open_dashboard(admin_page, f"?start_date={day(today, 20)}&end_date={day(today, 0)}&event_types=user_signup&event_types=payment_succeeded")
    with admin_page.expect_download() as download_info:
        admin_page.get_by_role("link", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"funnel-{day(today, 20)}-to-{day(today, 0)}.csv"
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))

    header = ["date", *(th.get_attribute("data-column") for th in admin_page.locator("#daily-table thead th[data-column]").all())]
    assert header == ["date", "user_signup", "payment_succeeded", "revenue_JPY", "revenue_USD"]
    # The CSV names each money column's unit and adds refunds, net and failed payments.
    assert rows[0] == ["date", "user_signup", "payment_succeeded", "revenue_JPY_minor", "revenue_USD_minor", "refunds_JPY_minor",
                       "refunds_USD_minor", "net_JPY_minor", "net_USD_minor", "payments_failed"]
    table = [
        [tr.get_attribute("data-date"), *(td.get_attribute("data-value") for td in tr.locator("td").all())]
        for tr in admin_page.locator("#daily-table tbody tr").all()
    ]
    assert [row[:5] for row in rows[1:]] == table
    assert all(row[5:] == ["0", "0", row[3], row[4], "0"] for row in rows[1:])  # no refunds or failures seeded
    expected = [
        [day(today, n), str(f["counts"]["user_signup"]), str(f["counts"]["payment_succeeded"]),
         str(f["revenue"].get("JPY", 0)), str(f["revenue"].get("USD", 0))]
        for n in range(20, -1, -1)
        for f in [day_figures(n)]
    ]
    assert table == expected
    screenshot(admin_page, "dashboard-csv-range")


def test_a_non_admin_gets_403(browser, live_server, screenshot):
    context = new_context(browser, live_server)
    page = context.new_page()
    login_through_pages(page, live_server, "customer@shop.test", "/admin/analytics")
    assert page.get_by_role("heading", name="Access denied").is_visible()
    response = page.goto("/admin/analytics")
    assert response.status == 403
    assert page.request.get("/admin/analytics/overview").status == 403
    screenshot(page, "forbidden-non-admin")
    context.close()


def test_an_expired_session_sends_the_dashboard_to_login(admin_page, today):
    open_dashboard(admin_page)
    admin_page.context.clear_cookies()
    admin_page.get_by_role("button", name="Last 7 days").click()
    admin_page.wait_for_url("**/login?next=*")
    assert admin_page.url.endswith(
        f"/login?next=%2Fadmin%2Fanalytics%3Fstart_date%3D{day(today, 6)}%26end_date%3D{day(today, 0)}"
    )
    admin_page.script_errors.clear()  # the refused fetch is logged by Chromium


def test_loading_state_is_explicit(admin_page, screenshot):
    held = []
    admin_page.route("**/admin/analytics/overview?*", lambda route: held.append(route))
    admin_page.goto("/admin/analytics")
    expect(admin_page.locator("#status")).to_have_text("Loading…")
    assert admin_page.locator("#dashboard").get_attribute("aria-busy") == "true"
    screenshot(admin_page, "dashboard-loading")
    assert len(held) == 2  # the dashboard's request and the finance panel's
    for route in held:
        route.continue_()
    wait_loaded(admin_page)
    assert admin_page.locator("#status").inner_text() == ""
    assert admin_page.locator("[data-kpi]").count() == 5


def test_error_and_empty_states_are_explicit(admin_page, today, screenshot):
    open_dashboard(admin_page, f"?start_date={day(today, 0)}&end_date={day(today, 5)}")
    assert admin_page.locator("#error").is_visible()
    assert "The start date (From, " in admin_page.locator("#error").inner_text()
    assert not admin_page.get_by_role("button", name="Try again").is_visible()
    assert not admin_page.locator("#kpis").is_visible() and not admin_page.locator("#csv-link").is_visible()
    assert admin_page.locator('[data-figure="revenue"]').is_visible()  # the projection does not depend on the range
    screenshot(admin_page, "dashboard-error")

    open_dashboard(admin_page, "?start_date=2020-01-01&end_date=2020-01-31")
    assert admin_page.locator("#dashboard").get_attribute("data-state") == "empty"
    assert "No events from" in admin_page.locator("#status").inner_text()
    assert admin_page.locator("#revenue-chart").inner_text() == "No revenue in this range."
    assert admin_page.locator("#top-plans").inner_text() == "No payments in this range."
    screenshot(admin_page, "dashboard-empty")


def test_phone_width_has_no_sideways_scrolling(browser, live_server, admin_state, screenshot):
    context = new_context(browser, live_server, viewport=PHONE, storage_state=admin_state)
    page = context.new_page()
    for path, name in [("/admin", "admin-home-phone"), ("/admin/analytics", "dashboard-phone")]:
        page.goto(path)
        if path == "/admin/analytics":
            wait_loaded(page)
            assert page.locator("#revenue-chart .main-svg").first.is_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        screenshot(page, name)
    # What a phone shows screen by screen (the full-page image is too tall to read).
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "dashboard-phone-top", full_page=False)
    for section in ["kpis", "revenue-chart", "events-chart", "projection", "top-plans", "daily-table"]:
        page.evaluate(f"document.getElementById('{section}').scrollIntoView({{block: 'start'}})")
        screenshot(page, f"dashboard-phone-{section}", full_page=False)
    context.close()


def test_logout_ends_the_session(browser, live_server, screenshot):
    context = new_context(browser, live_server)
    page = context.new_page()
    login_through_pages(page, live_server, "admin@shop.test", "/admin")
    assert page.get_by_role("link", name="Funnel analytics").is_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login")
    assert page.request.get("/auth/me").status == 401
    page.goto("/admin")
    assert "/login?next=%2Fadmin" in page.url
    screenshot(page, "login-after-logout")
    context.close()

