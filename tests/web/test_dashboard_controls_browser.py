"""The dashboard's view controls (time zone, interval, breakdown, internal users) and its marks for
today and for partial buckets, in Debian's Chromium at 1440 and 390 px.

The week and breakdown views are drawn from the real server's answers and checked against
figures worked out here from the seed. The today marks need a previous period cut at a known
instant, so that test feeds the real answer with `incomplete_day` and `previous.cut_at` set
through `page.route` (the server's own cut is tested in tests/test_report_scope.py)."""

import datetime as dt
import urllib.parse
from zoneinfo import ZoneInfo

import pytest

from tests.web.conftest import PHONE, WIDE, new_context
from tests.web.seed import PLANS, day_figures, orders_on, range_figures, signups_on

pytestmark = pytest.mark.single_db

TYPES = ["user_signup", "checkout_started", "payment_succeeded", "esim_activated"]
BAD_ZONE = "Mars/Nowhere"


@pytest.fixture(params=[WIDE, PHONE], ids=["1440px", "390px"])
def page(request, browser, live_server, admin_state):
    """A logged-in admin's page at each width; the test fails on any script error, and records the API requests."""
    context = new_context(browser, live_server, viewport=request.param, storage_state=admin_state)
    page = context.new_page()
    page.width_name = f"{request.param['width']}px"
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.script_errors = errors
    page.api_requests = []
    page.on("request", lambda r: page.api_requests.append(r.url) if "/admin/analytics/" in r.url else None)
    yield page
    context.close()
    assert errors == [], errors


def settle(page) -> None:
    page.locator('#dashboard[aria-busy="false"]').wait_for(state="attached")
    page.locator('#projection-body[aria-busy="false"]').wait_for()
    page.locator('#funnel-panel[aria-busy="false"]').wait_for(state="attached")
    page.locator('#retention-panel[aria-busy="false"]').wait_for(state="attached")
    page.wait_for_load_state("networkidle")


def query_of(url: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlparse(url).query)


def queries(page, path: str) -> list[dict[str, list[str]]]:
    """The queries of the requests to an API path, oldest first."""
    return [query_of(url) for url in page.api_requests if urllib.parse.urlparse(url).path == path]


def distinct(asked: list[dict]) -> list[dict]:
    """The different queries asked (the finance panel loads once at start and again on each range)."""
    return [q for i, q in enumerate(asked) if q not in asked[:i]]


def last_request(page, path: str) -> dict[str, list[str]]:
    asked = queries(page, path)
    assert asked, f"no request to {path} in {page.api_requests}"
    return asked[-1]


def day(today: dt.date, days_ago: int) -> str:
    return (today - dt.timedelta(days=days_ago)).isoformat()


def us_day(iso: str) -> str:
    """What en-US Intl shows for a day: "Dec 3, 2026"."""
    date = dt.date.fromisoformat(iso)
    return f"{date:%b} {date.day}, {date.year}"


def test_the_controls_round_trip_through_the_url_and_reach_every_request(page, today, screenshot):
    page.goto("/admin/analytics")
    settle(page)
    assert page.input_value("#tz-select") == ""
    assert page.locator("#tz-select option").first.inner_text() == "Shop default (UTC)"
    assert page.is_checked("#exclude-internal")
    # The default view sends exclude_internal=true and nothing the user did not choose (the
    # dashboard's overview request and the finance panel's, without ECB rates in the test database).
    assert distinct(queries(page, "/admin/analytics/overview")) == [{"exclude_internal": ["true"]}]
    assert queries(page, "/admin/analytics/timeseries") == [{"exclude_internal": ["true"]}]

    page.select_option("#tz-select", "Asia/Tokyo")
    page.select_option("#interval", "week")
    page.select_option("#breakdown", "plan")
    page.uncheck("#exclude-internal")
    settle(page)
    query = query_of(page.url)
    assert query == {"tz": ["Asia/Tokyo"], "interval": ["week"], "breakdown": ["plan"], "exclude_internal": ["false"]}
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    # The label names the zone the answer is in: an overview without `tz` (before notes/zones-api.md lands) counts UTC days.
    answered = page.request.get("/admin/analytics/overview?tz=Asia/Tokyo&exclude_internal=false&breakdown=plan").json()
    assert f"({answered.get('tz', 'UTC')}, 30 days)" in page.inner_text("#range-label")
    screenshot(page, f"controls-set-{page.width_name}", full_page=False)

    page.api_requests.clear()
    page.reload()
    settle(page)
    assert query_of(page.url) == query
    assert page.input_value("#tz-select") == "Asia/Tokyo"
    assert page.input_value("#interval") == "week"
    assert page.input_value("#breakdown") == "plan"
    assert not page.is_checked("#exclude-internal")
    common = {"tz": ["Asia/Tokyo"], "exclude_internal": ["false"]}
    # The dashboard's overview asks for the breakdown; the finance panel's only for the zone and users.
    assert sorted(distinct(queries(page, "/admin/analytics/overview")), key=len) == [common, {**common, "breakdown": ["plan"]}]
    assert last_request(page, "/admin/analytics/timeseries") == {**common, "breakdown": ["plan"], "interval": ["week"]}
    funnel = last_request(page, "/admin/analytics/funnel")
    assert (funnel["tz"], funnel["exclude_internal"], funnel["breakdown"]) == (["Asia/Tokyo"], ["false"], ["plan"])
    retention = last_request(page, "/admin/analytics/retention")
    assert (retention["tz"], retention["exclude_internal"]) == (["Asia/Tokyo"], ["false"])
    assert last_request(page, "/admin/analytics/projections")["tz"] == ["Asia/Tokyo"]
    # The CSV gets the same zone, users and interval (it has no breakdown columns).
    csv = query_of(page.get_attribute("#csv-link", "href"))
    assert (csv["tz"], csv["exclude_internal"], csv["interval"], "breakdown" in csv) == (["Asia/Tokyo"], ["false"], ["week"], False)

    # A zone not in the list, typed in: kept in the URL and in the text field after a reload.
    page.select_option("#tz-select", "other")
    page.fill("#tz-other", "America/Argentina/Buenos_Aires")
    page.press("#tz-other", "Enter")
    settle(page)
    assert query_of(page.url)["tz"] == ["America/Argentina/Buenos_Aires"]
    page.reload()
    settle(page)
    assert page.input_value("#tz-select") == "other"
    assert page.input_value("#tz-other") == "America/Argentina/Buenos_Aires"
    assert last_request(page, "/admin/analytics/timeseries")["tz"] == ["America/Argentina/Buenos_Aires"]

    # Back to the defaults: nothing of the view is left in the URL.
    page.select_option("#tz-select", "")
    page.select_option("#interval", "day")
    page.select_option("#breakdown", "")
    page.check("#exclude-internal")
    settle(page)
    assert urllib.parse.urlparse(page.url).query == ""
    screenshot(page, f"controls-defaults-{page.width_name}")


def test_the_browser_zone_is_offered(browser, live_server, admin_state):
    context = browser.new_context(base_url=live_server, viewport=WIDE, locale="en-US", timezone_id="America/Sao_Paulo",
                                  storage_state=admin_state)
    page = context.new_page()
    page.goto("/admin/analytics")
    page.locator('#dashboard[aria-busy="false"]').wait_for(state="attached")
    options = page.eval_on_selector_all("#tz-select option", "os => os.map(o => [o.value, o.textContent])")
    assert options[:2] == [["", "Shop default (UTC)"], ["America/Sao_Paulo", "America/Sao_Paulo (this browser)"]]
    assert options[-1] == ["other", "Other…"]
    assert [v for v, _ in options].count("America/Sao_Paulo") == 1
    context.close()


def test_an_unknown_zone_shows_the_servers_message(page, screenshot):
    refused = page.request.get(f"/admin/analytics/overview?tz={BAD_ZONE}")
    assert refused.status == 422
    detail = refused.json()["detail"]
    assert detail == f"tz: '{BAD_ZONE}' is not an IANA time zone (e.g. Europe/Berlin, UTC)"
    page.goto("/admin/analytics")
    settle(page)
    page.select_option("#tz-select", "other")
    page.fill("#tz-other", BAD_ZONE)
    page.press("#tz-other", "Enter")
    settle(page)
    assert query_of(page.url)["tz"] == [BAD_ZONE]
    assert page.locator("#error").is_visible()
    assert page.inner_text("#error-message") == f"Could not load the figures: {detail}"
    assert not page.get_by_role("button", name="Try again").is_visible()  # a 4xx: asking again will not help
    assert page.get_attribute("#dashboard", "data-state") == "error"
    # The funnel's message comes from the real server (its panel is hidden under the page's error).
    assert page.text_content("#funnel-error") == f"Could not load the funnel: {detail}"
    screenshot(page, f"controls-unknown-zone-{page.width_name}", full_page=False)
    page.script_errors.clear()  # Chromium logs the refused requests (422) as console errors


def test_last_7_complete_days_ends_yesterday_in_the_chosen_zone(page, today, screenshot):
    page.goto("/admin/analytics")
    settle(page)
    page.get_by_role("button", name="Last 7 complete days").click()
    settle(page)
    assert query_of(page.url) == {"start_date": [day(today, 7)], "end_date": [day(today, 1)]}
    assert page.get_by_role("button", name="Last 7 complete days").get_attribute("aria-pressed") == "true"
    assert page.get_by_role("button", name="Last 7 days").get_attribute("aria-pressed") == "false"
    assert int(page.get_attribute('[data-kpi="payment_succeeded"] .kpi-value', "data-value")) == (
        range_figures(7, 1)["counts"]["payment_succeeded"]
    )
    assert page.locator("#daily-table tbody tr").count() == 7
    screenshot(page, f"controls-last-7-complete-days-{page.width_name}", full_page=False)

    page.get_by_role("button", name="Last 30 complete days").click()
    settle(page)
    assert query_of(page.url) == {"start_date": [day(today, 30)], "end_date": [day(today, 1)]}

    # In a zone far from UTC, "yesterday" is that zone's: worked out here with zoneinfo.
    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago"]:
        page.goto(f"/admin/analytics?tz={urllib.parse.quote(zone)}")
        settle(page)
        page.get_by_role("button", name="Last 7 complete days").click()
        settle(page)
        yesterday = dt.datetime.now(ZoneInfo(zone)).date() - dt.timedelta(days=1)
        assert query_of(page.url) == {
            "start_date": [(yesterday - dt.timedelta(days=6)).isoformat()], "end_date": [yesterday.isoformat()], "tz": [zone],
        }


# ---- rendering of the spec's fields, fed through page.route ---------------------------------

def patch_json(page, pattern: str, change) -> None:
    """Answer requests matching `pattern` with the real answer changed by `change(body, query)`."""
    def handle(route):
        response = route.fetch()
        body = response.json()
        change(body, query_of(route.request.url))
        route.fulfill(response=response, json=body)

    page.route(pattern, handle)


def test_today_is_marked_as_incomplete(page, today, screenshot):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = day(today, 13)
    cut_at = now - dt.timedelta(days=14)  # the previous period's last day, at the same elapsed time

    def overview(body, query):
        body.update(tz="UTC", exclude_internal=True, incomplete_day=today.isoformat())
        body["previous"].update(cut_at=cut_at.isoformat().replace("+00:00", "Z"), compares="same_elapsed_time")

    def timeseries(body, query):
        body.update(tz="UTC", exclude_internal=True, incomplete_day=today.isoformat(), interval="day")

    patch_json(page, "**/admin/analytics/overview?*", overview)
    patch_json(page, "**/admin/analytics/timeseries?*", timeseries)
    page.goto(f"/admin/analytics?start_date={start}&end_date={today}")
    settle(page)

    note = page.locator("#kpi-note")
    assert note.is_visible()
    cut_text = f"{cut_at:%I:%M %p} on {us_day(cut_at.date().isoformat())}"
    assert note.inner_text() == f"Includes today ({us_day(today.isoformat())}) so far; the previous period is cut at the same time ({cut_text})."
    assert page.inner_text("#range-label").endswith("; internal users left out")

    for chart in ["events-chart", "revenue-chart"]:
        traces = page.evaluate(f"document.getElementById('{chart}').data.map(t => ({{x: t.x, opacity: t.marker.opacity, "
                               f"pattern: t.marker.pattern.shape, note: t.customdata}}))")
        for trace in traces:
            assert trace["x"][-1] == today.isoformat()
            assert trace["opacity"] == [1] * 13 + [0.45]
            assert trace["pattern"] == [""] * 13 + ["/"]
        annotations = page.evaluate(f"document.getElementById('{chart}').layout.annotations.map(a => [a.x, a.text])")
        assert annotations == [[today.isoformat(), "today, incomplete"]]
    last_row = page.locator("#daily-table tbody tr").last
    assert last_row.get_attribute("data-partial") == "true"
    assert last_row.locator("th").inner_text().endswith("(today so far)")
    assert page.locator("#daily-table tbody tr[data-partial]").count() == 1
    assert f"{us_day(today.isoformat())} is today and not over yet." in page.inner_text("#events-summary")
    page.locator("#kpis").scroll_into_view_if_needed()
    screenshot(page, f"incomplete-today-{page.width_name}", full_page=False)
    page.locator("#events-chart").scroll_into_view_if_needed()
    screenshot(page, f"incomplete-today-events-{page.width_name}", full_page=False)


def weeks_of(first: dt.date, last: dt.date) -> list[dt.date]:
    monday = first - dt.timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += dt.timedelta(days=7)
    return weeks


def test_weeks_cut_by_the_range_are_drawn_lighter(page, today, screenshot):
    first, last = today - dt.timedelta(days=24), today - dt.timedelta(days=1)
    weeks = weeks_of(first, last)

    def week_figures(monday: dt.date) -> dict:
        """The week's counts from the seed: its days inside the range only."""
        counts = dict.fromkeys(TYPES, 0)
        for offset in range(7):
            date = monday + dt.timedelta(days=offset)
            if first <= date <= last:
                for key, value in day_figures((today - date).days)["counts"].items():
                    counts[key] += value
        return counts

    # The real server's weekly buckets (no fed answer): their counts must be the seed's, summed per week.
    page.goto(f"/admin/analytics?start_date={first}&end_date={last}&interval=week")
    settle(page)
    partial = [monday < first or monday + dt.timedelta(days=6) > last for monday in weeks]
    assert any(partial) and not all(partial)
    traces = page.evaluate("document.getElementById('events-chart').data.map(t => ({meta: t.meta, x: t.x, y: t.y, "
                           "opacity: t.marker.opacity, note: t.customdata}))")
    assert [t["meta"] for t in traces] == TYPES
    for trace in traces:
        assert trace["x"] == [m.isoformat() for m in weeks]
        assert trace["y"] == [week_figures(m)[trace["meta"]] for m in weeks]
        assert trace["opacity"] == [0.45 if p else 1 for p in partial]
        assert trace["note"] == ["(partial week)" if p else "" for p in partial]
    assert page.inner_text("#events-heading") == "Events per week"
    assert page.inner_text("#table-heading") == "Week by week"
    rows = page.locator("#daily-table tbody tr")
    assert rows.count() == len(weeks)
    assert rows.first.locator("th").inner_text().startswith("Week of ")
    assert [r.get_attribute("data-partial") for r in rows.all()] == ["true" if p else None for p in partial]
    page.locator("#revenue-chart").scroll_into_view_if_needed()
    screenshot(page, f"interval-week-partial-{page.width_name}", full_page=False)


def plan_breakdown(today: dt.date, first_days_ago: int, plan_ids: dict[str, int]) -> list[dict]:
    """The overview's breakdown by plan for days_ago first_days_ago..0, from the seed: signups have no plan."""
    values = {name: {"value": name, "key": str(plan_ids[name]), "counts": dict.fromkeys(TYPES, 0), "revenue": {}}
              for name, _, _ in PLANS.values()}
    none = {"value": "(none)", "counts": dict.fromkeys(TYPES, 0), "revenue": {}}
    for days_ago in range(first_days_ago + 1):
        none["counts"]["user_signup"] += signups_on(days_ago)
        for order in orders_on(days_ago):
            name, price, currency = PLANS[order.plan]
            one = values[name]
            one["counts"]["checkout_started"] += 1
            one["counts"]["payment_succeeded"] += order.paid
            one["counts"]["esim_activated"] += order.activated
            if order.paid:
                one["revenue"][currency] = one["revenue"].get(currency, 0) + price
    ranked = sorted([*values.values(), none], key=lambda v: -sum(v["counts"].values()))
    for one in ranked:
        one["unique_users"] = dict(one["counts"])  # not shown by the page
    return ranked


def plan_series(today: dt.date, first_days_ago: int) -> list[dict]:
    """The timeseries' per-plan daily buckets from the seed."""
    series = []
    for key, (name, price, currency) in PLANS.items():
        buckets = []
        for days_ago in range(first_days_ago, -1, -1):
            orders = [o for o in orders_on(days_ago) if o.plan == key]
            paid = sum(o.paid for o in orders)
            buckets.append({"date": day(today, days_ago), "counts": {
                "user_signup": 0, "checkout_started": len(orders), "payment_succeeded": paid,
                "esim_activated": sum(o.activated for o in orders)}, "revenue": {currency: price * paid} if paid else {}})
        series.append({"value": name, "buckets": buckets})
    return series


def test_a_breakdown_shows_a_table_and_one_line_per_value(page, today, screenshot):
    first_days_ago = 13
    plan_ids = {p["plan_name"]: p["plan_id"]
                for p in page.request.get(f"/admin/analytics/overview?start_date={day(today, 59)}").json()["top_plans"]}
    values = plan_breakdown(today, first_days_ago, plan_ids)
    by_plan = {one["value"]: one for one in plan_series(today, first_days_ago)}
    # One line per value, in the values' order; "(none)" holds the signups (they have no plan).
    none = {"value": "(none)", "buckets": [
        {"date": day(today, n), "counts": {**dict.fromkeys(TYPES, 0), "user_signup": day_figures(n)["counts"]["user_signup"]}}
        for n in range(first_days_ago, -1, -1)
    ]}
    series = [none if v["value"] == "(none)" else by_plan[v["value"]] for v in values]
    # The values add up to the overall figures, as the API promises.
    totals = range_figures(first_days_ago, 0)
    assert {t: sum(v["counts"][t] for v in values) for t in TYPES} == totals["counts"]

    # The real server's breakdown (no fed answer): it must be the seed's figures per plan.
    page.goto(f"/admin/analytics?start_date={day(today, first_days_ago)}&end_date={today}&breakdown=plan")
    settle(page)
    panel = page.locator("#breakdown-panel")
    assert panel.is_visible()
    assert page.inner_text("#breakdown-heading") == "By plan"
    rows = [[row.get_attribute("data-value"), *(int(td.get_attribute("data-value")) for td in row.locator("td").all())]
            for row in page.locator("#breakdown-table tbody tr").all()]
    header = page.eval_on_selector_all("#breakdown-table thead th[data-column]", "ths => ths.map(th => th.dataset.column)")
    assert header == [*TYPES, "revenue_JPY", "revenue_USD"]
    assert rows == [[v["value"], *(v["counts"][t] for t in TYPES), v["revenue"].get("JPY", 0), v["revenue"].get("USD", 0)]
                    for v in values]
    foot = [int(td.get_attribute("data-value")) for td in page.locator("#breakdown-table tfoot td").all()]
    assert foot == [*(totals["counts"][t] for t in TYPES), totals["revenue"]["JPY"], totals["revenue"]["USD"]]

    def lines():
        return page.evaluate("document.getElementById('breakdown-chart').data.map(t => ({name: t.name, x: t.x, y: t.y}))")

    assert page.input_value("#breakdown-type") == "payment_succeeded"
    assert [(t["name"], t["y"]) for t in lines()] == [(s["value"], [b["counts"]["payment_succeeded"] for b in s["buckets"]]) for s in series]
    assert lines()[0]["x"] == [day(today, n) for n in range(first_days_ago, -1, -1)]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # wide tables scroll in their own box
    panel.scroll_into_view_if_needed()
    screenshot(page, f"breakdown-plan-{page.width_name}", full_page=False)

    page.select_option("#breakdown-type", "checkout_started")
    assert query_of(page.url)["breakdown_type"] == ["checkout_started"]
    assert [t["y"] for t in lines()] == [[b["counts"]["checkout_started"] for b in s["buckets"]] for s in series]
    page.reload()
    settle(page)
    assert page.input_value("#breakdown-type") == "checkout_started"
    # The dashboard-only parameter is never sent to the API.
    assert all("breakdown_type" not in query_of(url) for url in page.api_requests)
