"""The measured calls: our service functions (what the API runs) and DuckDB over the raw events."""

import datetime as dt
import statistics
import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.services import analytics

WINDOW_DAYS, HORIZON_DAYS = 90, 30  # the largest projection the API allows


def timed(call: Callable[[], object], repeat: int) -> dict:
    """First (cold) run, then `repeat` timed runs: median and p95 in ms."""
    began = time.perf_counter()
    call()
    first = (time.perf_counter() - began) * 1000
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {"first": first, "median": statistics.median(samples), "p95": samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]}


def ours(session: Session, today: dt.date, range_days: int) -> dict[str, Callable[[], object]]:
    """overview / timeseries / projections exactly as the admin API calls them."""
    days = analytics.resolve_range(None, None, default_days=range_days, today=today)

    def fresh(call):
        # One transaction per call, committed like a request's unit of work.
        def run():
            result = call()
            session.commit()
            return result
        return run

    from app.services import finance_reports

    return {
        # What GET /admin/analytics/overview and /timeseries compute: the report plus refunds,
        # net revenue and failed payments (no ?currency=), and the JSON the response carries.
        "overview": fresh(lambda: finance_reports.overview_report(session, session, days, None, None, today=today).model_dump_json()),
        "timeseries": fresh(lambda: finance_reports.timeseries_report(session, session, days, None, None).model_dump_json()),
        "projections": fresh(lambda: analytics.projections(session, window_days=WINDOW_DAYS, horizon_days=HORIZON_DAYS,
                                                            currency="USD", as_of=today, today=today)),
        # The dashboard's method: first = every model fitted (cold), median = cached (warm).
        "projections_auto": fresh(lambda: analytics.projections(session, window_days=WINDOW_DAYS, horizon_days=HORIZON_DAYS,
                                                                 currency="USD", as_of=today, today=today, method="auto")),
    }


def duckdb_reference(con, today: dt.date, range_days: int) -> dict[str, Callable[[], object]]:
    """The same questions answered by scanning the raw events table (exact distinct users)."""
    days = analytics.resolve_range(None, None, default_days=range_days, today=today)
    previous = days.previous()
    bounds = [days.start_at.replace(tzinfo=None), days.end_before.replace(tzinfo=None)]
    previous_bounds = [previous.start_at.replace(tzinfo=None), previous.end_before.replace(tzinfo=None)]
    in_range = "occurred_at >= ? AND occurred_at < ?"

    def overview():
        con.execute(f"SELECT event_type, count(*), count(DISTINCT user_id) FROM events WHERE {in_range} GROUP BY 1", bounds).fetchall()
        for b in (bounds, previous_bounds):
            con.execute(f"SELECT event_type, currency, count(*), sum(amount_minor_units) FILTER (WHERE event_type = 'payment_succeeded') "
                        f"FROM events WHERE {in_range} GROUP BY 1, 2", b).fetchall()
        con.execute(
            "SELECT t.plan_id, p.name, t.currency, t.revenue, t.payments FROM ("
            f" SELECT plan_id, currency, sum(amount_minor_units) AS revenue, count(*) AS payments FROM events"
            f" WHERE event_type = 'payment_succeeded' AND {in_range} GROUP BY 1, 2"
            " ORDER BY revenue DESC, payments DESC, plan_id, currency LIMIT 10) t LEFT JOIN plans p ON p.id = t.plan_id"
            " ORDER BY t.revenue DESC, t.payments DESC, t.plan_id, t.currency", bounds).fetchall()

    def timeseries():
        con.execute(f"SELECT CAST(occurred_at AS DATE) AS day, event_type, currency, count(*), sum(amount_minor_units) "
                    f"FROM events WHERE {in_range} GROUP BY 1, 2, 3 ORDER BY 1", bounds).fetchall()

    def projections():
        start = dt.datetime.combine(today - dt.timedelta(days=2 * WINDOW_DAYS), dt.time())
        con.execute("SELECT CAST(occurred_at AS DATE) AS day, event_type, count(*), sum(amount_minor_units) FROM events "
                    "WHERE (event_type = 'user_signup' OR (event_type = 'payment_succeeded' AND currency = 'USD')) "
                    "AND occurred_at >= ? AND occurred_at < ? GROUP BY 1, 2",
                    [start, dt.datetime.combine(today, dt.time())]).fetchall()
        con.execute("SELECT min(occurred_at) FROM events").fetchall()

    return {"overview": overview, "timeseries": timeseries, "projections": projections}


def exactness(session: Session, today: dt.date, range_days: int) -> dict[str, bool]:
    """Whether the bitmap answer equals COUNT(DISTINCT user_id) over the raw events, per type."""
    from sqlalchemy import func, select

    from app.models.analytics import AnalyticsEvent as e
    from app.services.unique_users import count_unique_users

    days = analytics.resolve_range(None, None, default_days=range_days, today=today)
    types = ["user_signup", "checkout_started", "payment_succeeded", "esim_activated"]
    ours = count_unique_users(session, days, types, today=today)
    rows = session.execute(
        select(e.event_type, func.count(func.distinct(e.user_id)))
        .where(e.occurred_at >= days.start_at, e.occurred_at < days.end_before)
        .group_by(e.event_type)
    ).all()
    session.commit()
    recount = {t: 0 for t in types} | {t: int(n) for t, n in rows}
    return {t: ours[t] == recount[t] for t in types}
