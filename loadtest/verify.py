"""After the run: the events table against a recount of the orders, and the figures."""

import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import create_engine, text

from loadtest.scenario import Customer, Stats


def database_counts(url: str) -> dict[str, object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        one = lambda sql: conn.execute(text(sql)).scalar()  # noqa: E731
        rows = lambda sql: [tuple(r) for r in conn.execute(text(sql))]  # noqa: E731
        found = {
            "events": dict(rows("SELECT event_type, COUNT(*) FROM analytics_events GROUP BY event_type")),
            "event_revenue": dict(rows("SELECT currency, SUM(amount_minor_units) FROM analytics_events WHERE event_type = 'payment_succeeded' GROUP BY currency")),
            "users": one("SELECT COUNT(*) FROM users"),
            "orders": one("SELECT COUNT(*) FROM orders"),
            "orders_by_status": dict(rows("SELECT status, COUNT(*) FROM orders GROUP BY status")),
            "paid_order_revenue": dict(rows("SELECT currency, SUM(amount_minor_units) FROM orders WHERE status IN ('paid', 'activated') GROUP BY currency")),
            "profiles_assigned": one("SELECT COUNT(*) FROM esim_profiles WHERE order_id IS NOT NULL"),
            "duplicate_facts": rows("SELECT dedupe_key, COUNT(*) FROM analytics_events GROUP BY dedupe_key HAVING COUNT(*) > 1"),
            "payments_for_unpaid_orders": one(
                "SELECT COUNT(*) FROM analytics_events e JOIN orders o ON o.id = e.order_id "
                "WHERE e.event_type = 'payment_succeeded' AND o.status NOT IN ('paid', 'activated')"
            ),
            "webhook_inbox": one("SELECT COUNT(*) FROM payment_webhook_events"),
        }
    engine.dispose()
    return found


async def overview_today(admin: Customer) -> dict:
    today = dt.datetime.now(dt.UTC).date()
    params = {"start_date": str(today - dt.timedelta(days=1)), "end_date": str(today + dt.timedelta(days=1))}
    response = await admin.call("overview", "GET", "/admin/analytics/overview", params=params, headers=admin.headers)
    return response.json()


def checks(found: dict, overview: dict, stats: Stats, clients: int) -> list[tuple[str, bool, str]]:
    """(what, passed, detail) for each thing that must hold."""
    events = Counter(found["events"])
    by_status = Counter(found["orders_by_status"])
    paid_orders = by_status["paid"] + by_status["activated"]
    server_errors = Counter(name for name, status, _ in stats.samples if status >= 500)
    revenue_events = {c: int(v) for c, v in found["event_revenue"].items()}
    revenue_orders = {c: int(v) for c, v in found["paid_order_revenue"].items()}
    return [
        ("no request answered 5xx", not server_errors, str(dict(server_errors))),
        ("no request failed in transport", not stats.transport_errors, str(dict(stats.transport_errors))),
        ("user_signup = users", events["user_signup"] == found["users"] == clients + 1, f"{events['user_signup']} events, {found['users']} users"),
        ("checkout_started = orders = 201s seen", events["checkout_started"] == found["orders"] == stats.seen["orders_created"],
         f"{events['checkout_started']} events, {found['orders']} orders, {stats.seen['orders_created']} created"),
        ("payment_succeeded = paid orders = 'paid' outcomes", events["payment_succeeded"] == paid_orders == stats.seen["paid"],
         f"{events['payment_succeeded']} events, {paid_orders} paid orders, {stats.seen['paid']} 'paid' webhook answers"),
        ("revenue in events = amounts of paid orders", revenue_events == revenue_orders, f"{revenue_events} vs {revenue_orders}"),
        ("esim_activated = activated orders = assigned profiles", events["esim_activated"] == by_status["activated"] == found["profiles_assigned"] == stats.seen["activated"],
         f"{events['esim_activated']} events, {by_status['activated']} orders, {found['profiles_assigned']} profiles, {stats.seen['activated']} seen"),
        ("no business fact counted twice", not found["duplicate_facts"], str(found["duplicate_facts"][:5])),
        ("payment_succeeded only for paid orders", found["payments_for_unpaid_orders"] == 0, str(found["payments_for_unpaid_orders"])),
        ("one intent per order, one profile per order", stats.seen["second_intent_for_one_order"] == 0 == stats.seen["two_profiles_for_one_order"], ""),
        ("overview (rollups) = events table", overview["counts"] == {k: events[k] for k in overview["counts"]} and overview["revenue"] == dict(sorted(revenue_events.items())),
         f"{overview['counts']} {overview['revenue']}"),
    ]


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))] if sorted_values else 0.0


def figures(stats: Stats, elapsed: float) -> list[str]:
    """Throughput and latency, overall and per endpoint."""
    by_name: dict[str, list[float]] = defaultdict(list)
    for name, _, latency in stats.samples:
        by_name[name].append(latency)
    everything = sorted(latency for _, _, latency in stats.samples)
    statuses = Counter(status for _, status, _ in stats.samples)
    lines = [
        f"requests: {len(everything)} in {elapsed:.1f} s = {len(everything) / elapsed:.1f} req/s",
        f"latency: p50 {percentile(everything, 0.5) * 1000:.1f} ms, p95 {percentile(everything, 0.95) * 1000:.1f} ms, p99 {percentile(everything, 0.99) * 1000:.1f} ms",
        f"statuses: {dict(sorted(statuses.items()))}",
        f"{'endpoint':<16}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}",
    ]
    for name, latencies in sorted(by_name.items()):
        latencies.sort()
        lines.append(f"{name:<16}{len(latencies):>8}{percentile(latencies, 0.5) * 1000:>10.1f}{percentile(latencies, 0.95) * 1000:>10.1f}")
    return lines
