"""The overview's `conversion` is the ordered funnel of people (by user, 14-day window);
the ratios of event counts stay under `event_count_ratios`."""

import datetime as dt

import pytest

from app.services import analytics, finance_reports
from app.services.dates import DayRange
from app.services.funnel_store import catch_up
from app.services.report_engine import SqlEngine
from tests.finance_helpers import admin_token
from tests.funnel_helpers import History

MARCH = DayRange(dt.date(2025, 3, 1), dt.date(2025, 3, 20))
QUERY = "start_date=2025-03-01&end_date=2025-03-20"


@pytest.fixture
def people(db):
    """Who does what (UTC); the range is 2025-03-01 .. 03-20."""
    h = History(db)
    a = h.user("2025-03-01 10:00")  # checks out twice, pays twice, activates once
    h.order(a, "2025-03-01 11:00", "2025-03-01 12:00", "2025-03-04 09:00")
    h.order(a, "2025-03-02 09:00", "2025-03-03 09:00")
    b = h.user("2025-02-20 10:00")  # signed up before the range: its events count, it is no entrant
    h.order(b, "2025-03-02 10:00", "2025-03-02 11:00", "2025-03-02 12:00")
    c = h.user("2025-03-05 10:00")  # checks out, never pays
    h.order(c, "2025-03-06 10:00")
    d = h.user("2025-03-02 00:00")  # checks out one second after its 14-day window
    h.order(d, "2025-03-16 00:00:01")
    e = h.user("2025-03-03 00:00")  # checks out at exactly 14 days: inside the window
    h.order(e, "2025-03-17 00:00")
    f = h.user("2025-03-10 10:00")  # a payment without a checkout: no step 2, so no step 3
    h.order(f, None, "2025-03-11 10:00")
    g = h.user("2025-03-20 23:00")  # the range's last day; checks out and pays after the range
    h.order(g, "2025-03-21 01:00", "2025-03-21 02:00")
    h.user("2025-02-28 20:00")  # 03-01 05:00 in Tokyo; never checks out
    db.flush()
    return {"a": a, "g": g}


# Entrants A, C, D, E, F, G; checkout within 14 days: A, C, E, G; paid after it: A, G; activated: A.
PEOPLE = {"signup_to_checkout": 4 / 6, "checkout_to_payment": 2 / 4, "payment_to_activation": 1 / 2, "signup_to_activation": 1 / 6}
# Events on 03-01 .. 03-20: 6 signups, 6 checkouts (A twice, B, C, D, E), 4 payments (A twice, B, F), 2 activations (A, B).
EVENT_COUNTS = {"signup_to_checkout": 1.0, "checkout_to_payment": 4 / 6, "payment_to_activation": 2 / 4, "signup_to_activation": 2 / 6}


def test_overview_conversion_is_the_ordered_funnel_of_people(client, db, people):
    body = client.get(f"/admin/analytics/overview?{QUERY}", headers=admin_token(db)).json()
    assert body["counts"] == {"user_signup": 6, "checkout_started": 6, "payment_succeeded": 4, "esim_activated": 2}
    assert body["conversion"] == PEOPLE
    assert body["event_count_ratios"] == EVENT_COUNTS
    assert body["conversion_basis"] == "ordered_funnel_by_user_window_14d"


def test_conversion_equals_the_funnel_report(client, db, people):
    admin = admin_token(db)
    funnel = client.get(f"/admin/analytics/funnel?{QUERY}&by=user&window_days=14", headers=admin).json()
    assert [step["count"] for step in funnel["funnel"]] == [6, 4, 2, 1]
    conversion = client.get(f"/admin/analytics/overview?{QUERY}", headers=admin).json()["conversion"]
    steps = funnel["funnel"]
    assert conversion == {
        "signup_to_checkout": steps[1]["conversion_from_previous"],
        "checkout_to_payment": steps[2]["conversion_from_previous"],
        "payment_to_activation": steps[3]["conversion_from_previous"],
        "signup_to_activation": steps[3]["conversion_from_start"],
    }


def test_the_same_once_the_queue_is_applied(db, people):
    assert analytics.ordered_conversion(db, MARCH) == analytics.Conversion(**PEOPLE)
    while catch_up(db):
        pass
    assert analytics.ordered_conversion(db, MARCH) == analytics.Conversion(**PEOPLE)


def test_local_days_of_a_zone_and_internal_users_left_out(db, people):
    # Tokyo (UTC+9): the 02-28 20:00 signup enters, G (03-21 08:00 local) does not.
    tokyo = analytics.ordered_conversion(db, MARCH, tz="Asia/Tokyo")
    assert tokyo.model_dump() == {"signup_to_checkout": 3 / 6, "checkout_to_payment": 1 / 3, "payment_to_activation": 1.0,
                                  "signup_to_activation": 1 / 6}
    # Without A: entrants C, D, E, F, G; checkout C, E, G; paid G; nobody activated.
    without_a = analytics.ordered_conversion(db, MARCH, internal_user_ids=frozenset({people["a"].id}))
    assert without_a.model_dump() == {"signup_to_checkout": 3 / 5, "checkout_to_payment": 1 / 3, "payment_to_activation": 0.0,
                                      "signup_to_activation": 0.0}
    report = finance_reports.overview_report(db, db, MARCH, None, None, scope=analytics.Scope(zone_name="Asia/Tokyo"))
    assert report.conversion == tokyo
    assert report.event_count_ratios.model_dump() == EVENT_COUNTS


def test_no_signups_in_the_range_is_null_conversion(client, db, people):
    body = client.get("/admin/analytics/overview?start_date=2025-03-21&end_date=2025-03-21", headers=admin_token(db)).json()
    assert body["counts"]["user_signup"] == 0
    assert body["conversion"] == dict.fromkeys(PEOPLE)
    assert body["event_count_ratios"] == {"signup_to_checkout": None, "checkout_to_payment": 1.0,
                                          "payment_to_activation": 0.0, "signup_to_activation": None}


def test_another_engine_takes_the_conversions_from_the_shops_session(db, people):
    # Any engine that is not the session (ClickHouse in production): the funnel still reads `session`.
    report = finance_reports.overview_report(db, SqlEngine(db), MARCH, None, None)
    assert report.conversion.model_dump() == PEOPLE
    with pytest.raises(ValueError, match="shop's session"):
        analytics.overview(SqlEngine(db), MARCH)
