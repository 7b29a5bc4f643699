"""The funnel and retention panels in Debian's Chromium: figures equal the API, state lives in the URL."""

import datetime as dt
import json
import urllib.parse

import pytest

pytestmark = pytest.mark.single_db


def wait_funnel(page) -> None:
    page.locator('#funnel-panel[aria-busy="false"]').wait_for()
    page.locator('#retention-panel[aria-busy="false"]').wait_for()
    page.locator('#dashboard[aria-busy="false"]').wait_for()


def api(page, path: str) -> dict:
    return json.loads(page.evaluate(f"fetch('{path}').then(r => r.text())"))


def table_rows(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#funnel-table tbody tr", "rows => rows.map(r => [...r.children].map(c => c.textContent))"
    )


def test_funnel_panel_equals_the_api_and_survives_a_reload(admin_page, today, screenshot):
    start = (today - dt.timedelta(days=29)).isoformat()
    admin_page.goto(f"/admin/analytics?start_date={start}&end_date={today}")
    wait_funnel(admin_page)
    body = api(admin_page, f"/admin/analytics/funnel?start_date={start}&end_date={today}&exclude_internal=true")
    rows = table_rows(admin_page)
    assert [r[0] for r in rows] == ["Signed up", "Started checkout", "Paid", "Activated eSIM"]
    assert [int(r[1].replace(",", "")) for r in rows] == [s["count"] for s in body["funnel"]]
    assert [int(r[4]) for r in rows] == [s["in_progress"] for s in body["funnel"]]
    assert [int(r[5]) for r in rows] == [s["dropped"] for s in body["funnel"]]
    assert body["funnel"][0]["count"] > 0 and body["funnel"][1]["count"] > 0
    traces = admin_page.evaluate("document.getElementById('funnel-chart').data.map(t => ({name: t.name, y: t.y}))")
    assert [t["name"] for t in traces] == ["Reached", "Still in window", "Dropped"]
    assert traces[0]["y"] == [s["count"] for s in body["funnel"]]
    screenshot(admin_page, "funnel-people-30-days")

    admin_page.select_option("#funnel-window", "3")
    admin_page.select_option("#funnel-by", "order")
    wait_funnel(admin_page)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(admin_page.url).query)
    assert query["funnel_window"] == ["3"] and query["funnel_by"] == ["order"] and query["start_date"] == [start]
    orders = api(admin_page, f"/admin/analytics/funnel?start_date={start}&end_date={today}&by=order&window_days=3&exclude_internal=true")
    assert [r[0] for r in table_rows(admin_page)] == ["Started checkout", "Paid", "Activated eSIM"]
    assert [int(r[1].replace(",", "")) for r in table_rows(admin_page)] == [s["count"] for s in orders["funnel"]]
    # A reload (or a shared link) shows the same panel.
    admin_page.reload()
    wait_funnel(admin_page)
    assert admin_page.input_value("#funnel-window") == "3" and admin_page.input_value("#funnel-by") == "order"
    assert [int(r[1].replace(",", "")) for r in table_rows(admin_page)] == [s["count"] for s in orders["funnel"]]
    # The dashboard's own range buttons keep the funnel's parameters.
    admin_page.get_by_role("button", name="90 days").click()
    wait_funnel(admin_page)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(admin_page.url).query)
    assert query["funnel_window"] == ["3"] and query["start_date"] == [(today - dt.timedelta(days=89)).isoformat()]
    screenshot(admin_page, "funnel-orders-window-3-90-days")


def test_breakdown_and_verified_step(admin_page, today, screenshot):
    start = (today - dt.timedelta(days=59)).isoformat()
    admin_page.goto(f"/admin/analytics?start_date={start}&end_date={today}&funnel_breakdown=plan")
    wait_funnel(admin_page)
    body = api(admin_page, f"/admin/analytics/funnel?start_date={start}&end_date={today}&breakdown=plan&exclude_internal=true")
    shown = [(r[0], int(r[1].replace(",", ""))) for r in table_rows(admin_page)]
    assert shown == [(s["value"], s["entrants"]) for s in body["breakdowns"]]
    assert sum(n for _, n in shown) == body["funnel"][0]["count"]
    assert len(admin_page.evaluate("document.getElementById('funnel-chart').data")) == len(body["breakdowns"])
    admin_page.locator("#funnel-panel").scroll_into_view_if_needed()
    screenshot(admin_page, "funnel-breakdown-plan-60-days")

    admin_page.select_option("#funnel-breakdown", "")
    admin_page.check("#funnel-verified")
    wait_funnel(admin_page)
    assert "funnel_steps=verified" in admin_page.url and "funnel_breakdown" not in admin_page.url
    assert [r[0] for r in table_rows(admin_page)][:2] == ["Signed up", "Verified code"]


def test_retention_heatmap(admin_page, today, screenshot):
    start = (today - dt.timedelta(days=59)).isoformat()
    admin_page.goto(f"/admin/analytics?start_date={start}&end_date={today}&retention_interval=week")
    wait_funnel(admin_page)
    body = api(admin_page, f"/admin/analytics/retention?start_date={start}&end_date={today}&interval=week&exclude_internal=true")
    trace = admin_page.evaluate("(() => { const t = document.getElementById('retention-chart').data[0]; return {y: t.y, z: t.z}; })()")
    assert len(trace["y"]) == len(body["cohorts"])
    assert trace["z"][0][: len(body["cohorts"][0]["rates"])] == body["cohorts"][0]["rates"]
    admin_page.locator("#retention-panel").scroll_into_view_if_needed()
    screenshot(admin_page, "retention-weekly-60-days", full_page=False)
    admin_page.select_option("#retention-interval", "month")
    admin_page.locator('#retention-panel[aria-busy="false"]').wait_for()
    assert "retention_interval=month" in admin_page.url


def test_bad_zone_in_the_url_shows_the_servers_reason(admin_page):
    admin_page.goto("/admin/analytics?tz=Mars/Olympus")
    # The overview refuses the zone too, so the page's error covers the panels: they are attached, not visible.
    admin_page.locator('#funnel-panel[aria-busy="false"]').wait_for(state="attached")
    admin_page.locator('#retention-panel[aria-busy="false"]').wait_for(state="attached")
    admin_page.locator('#dashboard[aria-busy="false"]').wait_for(state="attached")
    assert "Mars/Olympus" in admin_page.inner_text("#error-message")
    assert "tz" in admin_page.text_content("#retention-error")
    assert "tz" in admin_page.text_content("#funnel-error")
    assert admin_page.get_attribute("#funnel-panel", "data-state") == "error"
    # The browser logs the failed requests (422) as console errors: expected here.
    admin_page.script_errors.clear()
