"""The ordered funnel from the warehouse's events (ANALYTICS_ENGINE=clickhouse), equal to `SqlFunnelEngine`.

The definition is `funnel_spec`: the entry is the user's signup (by=user) or the order's
checkout (by=order); each later step is the earliest event of its type at or after the time
the previous step was reached (checkouts ordered by time, then order id, as `_chain` does);
step k counts iff it is reached within `window_days` of the entry.

How ClickHouse computes it, in one statement per answer:
1. one GROUP BY per entrant over the events (`FINAL`: a row shipped twice counts once)
   collects its entry time and each later step's candidates as arrays, times in
   microseconds (`occurred_at` + `occurred_at_us`);
2. array functions walk the chain (`arrayFilter` at or after the previous time, then the
   earliest), so a checkout at the same instant as its signup counts and an event
   before the previous step never does;
3. an outer GROUP BY per series counts the steps reached and the windows still open at
   `query.now`, and picks the exact nearest-rank p50/p90 gaps from the sorted gaps
   (rank = max(1, ceil(p * n / 100)), as `funnel_spec.percentile_rank`).
Only a few rows per series come back. It uses no window functions and no DateTime64, so
it runs on ClickHouse 18.16 as on current releases. `windowFunnel` is not used: it counts
an event only strictly after the previous step's and chains the first match of each
level, not the earliest one after the previous step.

A user's signup and an order's checkout are unique (the events' dedupe key), so the
entrants of the range are those whose entry event falls in it; later events are read up
to `window_days` after the range. On a cluster the per-entrant GROUP BY reads the
Distributed table, so each shard's partial arrays are merged by the initiator: exact
wherever an entrant's events are. (They share one shard anyway: the table is sharded by
user id, and an order's events carry its user's id.)

Breakdowns: plan names and regions come from the shop's `plans` table (the warehouse does
not copy it), read for the plan ids the entrants are attributed to. For plan, region and
currency a first statement counts the entrants per attributed value, the top 10 labels are
chosen here, and the second statement groups by them (the rest as "Other").

`steps=verified` is not answered here: `users.verified_at` lives only in the shop's
database, and shipping every range's verified times into a statement would not scale. The
endpoint answers that option from the SQL engine (`engine: sql` in the response).
"""

import datetime as dt
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models.analytics import EventType
from app.models.plan import Plan
from app.schemas.funnel import FunnelResponse, FunnelSeries, FunnelStepResult
from app.services import zones
from app.services.clickhouse_client import literal
from app.services.funnel_query import NONE_VALUE, OTHER_VALUE, TOP_VALUES, FunnelQuery, funnel_response, step_results
from app.services.funnel_spec import DAY_US, micros, step_names

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MOMENT = "toUInt64(occurred_at) * 1000000 + occurred_at_us"  # microseconds since the epoch
SIGNUP, CHECKOUT = EventType.USER_SIGNUP.value, EventType.CHECKOUT_STARTED.value
PAID, ACTIVATED = EventType.PAYMENT_SUCCEEDED.value, EventType.ESIM_ACTIVATED.value
OVERALL = ""  # the series key of the whole funnel; no other series key is empty
OTHER_KEY = "#other"
VALUE_BREAKDOWNS = ("plan", "region", "currency")


class ClickHouseFunnelEngine:
    """`FunnelEngine` over the events table of a `ClickHouseEngine` (embedded chDB, a server or a cluster)."""

    name = "clickhouse"

    def __init__(self, warehouse_engine) -> None:
        self.base = warehouse_engine
        self.client = warehouse_engine.client

    def funnel(self, session: Session, query: FunnelQuery) -> FunnelResponse:
        if query.chain != "base":
            raise ValueError("steps=verified needs users.verified_at: the SQL engine answers it")
        names = step_names(query.by, query.chain)
        entrants = self._entrants(query)
        series_key, shown = None, None  # shown: (series key, label) in the SQL engine's order; None: every key, sorted
        if query.breakdown in VALUE_BREAKDOWNS:
            series_key, shown = self._top_values(session, query, entrants)
        elif query.breakdown is not None:
            series_key = _period_label(query)
        rows = self._summaries(query, names, entrants, series_key)
        steps = rows.pop(OVERALL, None) or _empty(names)
        series = None
        if query.breakdown is not None:
            shown = shown if shown is not None else [(key, key) for key in sorted(rows)]  # periods in time order, all shown
            series = [FunnelSeries(value=label, entrants=rows[key][0].count, steps=rows[key]) for key, label in shown if key in rows]
        return funnel_response(
            query, names, steps, series, "clickhouse", engine="clickhouse", fresh_as_of=self.base.fresh_as_of()
        )

    def step_counts(self, session: Session, query: FunnelQuery) -> list[int]:
        return [step.count for step in self.funnel(session, query).funnel]

    # --- the per-entrant chains ------------------------------------------------------------

    def _entrants(self, query: FunnelQuery) -> str:
        """One row per entrant of the range: entry, t2..tn (0: not reached), plan_id, currency, attributed, reached."""
        start_at, end_before = zones.day_span(query.start, query.end, zones.zone(query.tz))
        entry_type, later = (SIGNUP, [CHECKOUT, PAID, ACTIVATED]) if query.by == "user" else (CHECKOUT, [PAID, ACTIVATED])
        key = "user_id" if query.by == "user" else "order_id"
        # Later steps are at or after the entry (>= start_at) and within the window (< end_before + W days).
        conditions = [
            f"event_type IN {literal([entry_type, *later])}", f"{key} != 0",
            f"occurred_at >= {literal(start_at)}",
            f"occurred_at < {literal(end_before + dt.timedelta(days=query.window_days))}",
            f"(event_type != {literal(entry_type)} OR occurred_at < {literal(end_before)})",
        ]
        having = [f"countIf(event_type = {literal(entry_type)}) > 0"]
        excluded = sorted(query.internal_user_ids)
        if excluded and query.by == "user":
            conditions.append(f"user_id NOT IN {literal(excluded)}")
        elif excluded:
            having.append(f"maxIf(user_id, event_type = {literal(CHECKOUT)}) NOT IN {literal(excluded)}")
        collected = [f"groupArrayIf({MOMENT}, event_type = {literal(PAID)}) AS payments",
                     f"groupArrayIf({MOMENT}, event_type = {literal(ACTIVATED)}) AS activations"]
        chain = []
        if query.by == "user":
            # The checkout's order id breaks ties at one instant (`_chain`); its plan and currency attribute the user.
            collected.append(f"groupArrayIf(({MOMENT}, order_id, plan_id, currency), event_type = {literal(CHECKOUT)}) AS checkouts")
            after_entry = "arrayFilter(c -> tupleElement(c, 1) >= entry, checkouts)"
            first = f"arraySort({after_entry})[1]"
            chain.append(f"if(notEmpty({after_entry}), tupleElement({first}, 1), toUInt64(0)) AS t2")
            dims = f"tupleElement({first}, 3) AS plan_id, tupleElement({first}, 4) AS currency"
            attributed = "reached >= 2"  # its first checkout is within the window
        else:
            collected.append(f"arraySort(groupArrayIf(({MOMENT}, plan_id, currency), event_type = {literal(CHECKOUT)}))[1] AS checkout")
            dims = "tupleElement(checkout, 2) AS plan_id, tupleElement(checkout, 3) AS currency"
            attributed = "1"
        # Each step: the earliest candidate at or after the previous step's time (0: never reached).
        for candidates in ("payments", "activations"):
            k = len(chain) + 2
            previous = "entry" if k == 2 else f"t{k - 1}"
            chain.append(f"if({previous} = 0, toUInt64(0), arrayReduce('min', arrayFilter(x -> x >= {previous}, {candidates}))) AS t{k}")
        n = len(later) + 1
        window_us = query.window_days * DAY_US
        reached = " + ".join(["1", *(f"(t{k} != 0 AND t{k} - entry <= {window_us})" for k in range(2, n + 1))])
        gaps = ", ".join(f"t{k} - {'entry' if k == 2 else f't{k - 1}'} AS gap{k}" for k in range(2, n + 1))
        times = ", ".join(f"t{k}" for k in range(2, n + 1))
        return (
            f"(SELECT entry, {times}, plan_id, currency, {attributed} AS attributed, reached, {gaps} FROM ("
            f"SELECT entry, {', '.join(chain)}, {dims}, {reached} AS reached FROM ("
            f"SELECT minIf({MOMENT}, event_type = {literal(entry_type)}) AS entry, {', '.join(collected)} "
            f"FROM {self.base.table} FINAL WHERE {' AND '.join(conditions)} "
            f"GROUP BY {key} HAVING {' AND '.join(having)})))"
        )

    def _summaries(self, query: FunnelQuery, names, entrants: str, series_key: str | None) -> dict[str, list[FunnelStepResult]]:
        """Per series key (OVERALL: every entrant): the step results, from one aggregation."""
        n = len(names)
        deadline_us = micros(query.now - EPOCH) - query.window_days * DAY_US
        columns = ["count()"]
        columns += [f"countIf(reached >= {k})" for k in range(2, n + 1)]
        columns += [f"countIf(reached = {k - 1} AND entry >= {deadline_us})" for k in range(2, n + 1)]
        for k in range(2, n + 1):
            ranked = f"arraySort(groupArrayIf(gap{k}, reached >= {k}))"
            for percent in (50, 90):
                columns.append(f"{ranked}[toUInt64(greatest(1, intDiv(countIf(reached >= {k}) * {percent} + 99, 100)))]")
        series = literal(OVERALL) if series_key is None else f"arrayJoin([{literal(OVERALL)}, {series_key}])"
        rows = self.client.rows(f"SELECT {series} AS series, {', '.join(columns)} FROM {entrants} GROUP BY series")
        results = {}
        for key, *values in rows:
            counts = [int(v) for v in values[:n]]
            open_short = [0, *(int(v) for v in values[n:2 * n - 1])]
            picked = values[2 * n - 1:]
            percentiles = [(None, None)] + [
                (int(picked[2 * i]), int(picked[2 * i + 1])) if counts[i + 1] else (None, None) for i in range(n - 1)
            ]
            results[key] = step_results(names, counts, open_short, percentiles)
        return results

    # --- breakdowns --------------------------------------------------------------------------

    def _top_values(self, session: Session, query: FunnelQuery, entrants: str) -> tuple[str, list[tuple[str, str]]]:
        """For plan/region/currency: the series key of each entrant (its label's rank among the top 10, else
        OTHER_KEY) and the (key, label) pairs in the SQL engine's order (by entrants, then label; Other last)."""
        raw = "if(attributed, currency, '')" if query.breakdown == "currency" else "toString(if(attributed, plan_id, 0))"
        counts = {value: int(n) for value, n in self.client.rows(f"SELECT {raw} AS raw, count() FROM {entrants} GROUP BY raw")}
        label_of = _labeller(session, query.breakdown, counts)
        by_label = Counter()
        for value, n in counts.items():
            by_label[label_of(value)] += n
        ranked = sorted(by_label, key=lambda label: (-by_label[label], label))
        # Keys, not labels: a plan may be named "Other" (the SQL engine then lists two such series).
        key_of = {label: f"#{rank}" for rank, label in enumerate(ranked[:TOP_VALUES])}
        shown = [(key, label) for label, key in key_of.items()] + ([(OTHER_KEY, OTHER_VALUE)] if len(ranked) > TOP_VALUES else [])
        if not counts:
            return literal(OTHER_KEY), shown
        values = sorted(counts)
        keys = [key_of.get(label_of(v), OTHER_KEY) for v in values]
        return f"transform({raw}, [{', '.join(map(literal, values))}], [{', '.join(map(literal, keys))}], {literal(OTHER_KEY)})", shown


def _period_label(query: FunnelQuery) -> str:
    """The entry's local week (its Monday) or month, as the SQL engine writes it."""
    local_day = f"toDate(toDateTime(intDiv(entry, 1000000), 'UTC'), {literal(query.tz)})"
    if query.breakdown == "signup_week":
        return f"toString(toMonday({local_day}))"
    return f"substring(toString(toStartOfMonth({local_day})), 1, 7)"


def _labeller(session: Session, kind: str, values):
    """The label of an attributed value: a plan's name or region from the shop's plans, or the currency."""
    if kind == "currency":
        return lambda value: value or NONE_VALUE
    ids = sorted({int(v) for v in values if v != "0"})
    plans = {pid: (name, region) for pid, name, region in session.execute(
        select(Plan.id, Plan.name, Plan.region).where(Plan.id.in_(ids))
    ).all()} if ids else {}

    def label(value: str) -> str:
        plan_id = int(value)
        if not plan_id:
            return NONE_VALUE
        if kind == "plan":
            return (plans.get(plan_id) or (None, None))[0] or f"plan {plan_id}"
        return (plans.get(plan_id) or (None, None))[1] or NONE_VALUE

    return label


def _empty(names) -> list[FunnelStepResult]:
    n = len(names)
    return step_results(names, [0] * n, [0] * n, [(None, None)] * n)
