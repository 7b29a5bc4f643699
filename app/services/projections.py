"""`GET /admin/analytics/projections`: daily series from the report engine, forecasts from `forecast`.

History is whole UTC days that are over: the days before ``as_of``, and never today or
later (a future ``as_of`` leaves a gap of days that are forecast but not shown). Nothing
here writes: fitted answers are cached in process memory by `forecast.project`.
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from app.schemas.analytics import Projection
from app.services import forecast
from app.services.dates import DayRange
from app.services.report_engine import ReportEngine

METRICS = ("revenue", "signups", "payments")
NOT_ENOUGH_DATA = "Not enough data"


def _half_up(value: float) -> int:
    # Decimal(float) is the float's exact value: halves stay halves, as the contract rounds.
    return int(Decimal(float(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _span(days: DayRange) -> dict:
    return {"start": days.start.isoformat(), "end": days.end.isoformat(), "days": days.days}


def projections(
    engine: ReportEngine,
    *,
    window_days: int,
    horizon_days: int,
    currency: str,
    as_of: dt.date,
    today: dt.date,
    method: str = "moving_average",
    level: int = 80,
    training_days: int = 365,
) -> Projection:
    """Forecast of revenue (one currency), signups and payments with intervals and a backtest."""
    last_complete = min(as_of, today) - dt.timedelta(days=1)
    skip = (as_of - today).days if as_of > today else 0
    history_range = DayRange(last_complete - dt.timedelta(days=window_days - 1), last_complete)
    earlier_range = history_range.previous()
    training_cap = DayRange(last_complete - dt.timedelta(days=max(training_days, window_days) - 1), last_complete)
    by_day = engine.forecast_series_by_day(min(earlier_range.start, training_cap.start), last_complete, currency)
    history = [
        dict(zip(("date", "revenue_minor_units", "signups", "payments"), (d.isoformat(), *by_day.get(d, (0, 0, 0))), strict=True))
        for d in history_range.each_day()
    ]
    forecast_days = [as_of + dt.timedelta(days=i) for i in range(horizon_days)]
    body = {
        "engine": engine.name,
        "fresh_as_of": engine.fresh_as_of(),
        "method": method,
        "window_days": window_days,
        "horizon_days": horizon_days,
        "currency": currency,
        "as_of": as_of.isoformat(),
        "history": history,
        "forecast": [],
        "projected_revenue_minor_units": 0,
        "projected_signups": 0,
        "growth_rate": None,
        "note": None,
        "level": level,
        "last_complete_day": last_complete.isoformat(),
        "projected_payments": 0,
        "totals": None,
        "models": None,
        "training": None,
        "backtest": None,
        "growth_rate_compares": None,
    }
    first_day = engine.first_event_day()
    training_start = max(first_day, training_cap.start) if first_day else None
    n = (last_complete - training_start).days + 1 if training_start else 0
    if method == "moving_average":  # the contract's rule, unchanged
        too_short = first_day is None or first_day > history_range.start
    else:
        too_short = n < forecast.MIN_HISTORY_DAYS
    if too_short:
        body["note"] = NOT_ENOUGH_DATA
        return Projection(**body)
    training = DayRange(training_start, last_complete)
    body["training"] = _span(training)
    body["growth_rate"], body["growth_rate_compares"] = _growth(by_day, history_range, earlier_range, first_day)
    series = [by_day.get(d, (0, 0, 0)) for d in training.each_day()]
    results = {
        metric: forecast.project(
            [row[i] for row in series], method=method, horizon=horizon_days, level=level, window=window_days, skip=skip
        )
        for i, metric in enumerate(METRICS)
    }
    rows = []
    for i, day in enumerate(forecast_days):
        row = {"date": day.isoformat()}
        for metric, result in results.items():
            key = "revenue_minor_units" if metric == "revenue" else metric
            bounds = (result["point"][i], result["lower"][i], result["upper"][i])
            if metric == "revenue":
                bounds = tuple(_half_up(v) for v in bounds)
            row[key], row[f"{metric}_lower"], row[f"{metric}_upper"] = bounds
        rows.append(row)
    body["forecast"] = rows
    body["projected_revenue_minor_units"] = sum(r["revenue_minor_units"] for r in rows)
    body["projected_signups"] = sum(r["signups"] for r in rows)
    body["projected_payments"] = sum(r["payments"] for r in rows)
    body["totals"] = {
        metric: {
            "value": body[f"projected_{'revenue_minor_units' if metric == 'revenue' else metric}"],
            "lower": _half_up(result["total_lower"]) if metric == "revenue" else result["total_lower"],
            "upper": _half_up(result["total_upper"]) if metric == "revenue" else result["total_upper"],
        }
        for metric, result in results.items()
    }
    body["models"] = {metric: result["method"] for metric, result in results.items()}
    body["backtest"] = {metric: _backtest(result, training) for metric, result in results.items()}
    # A note every metric shares is said once; the others name their metric.
    shared = [note for note in results["revenue"]["notes"] if all(note in r["notes"] for r in results.values())]
    notes = shared + [f"{m.capitalize()}: {note}" for m, r in results.items() for note in r["notes"] if note not in shared]
    if skip:
        notes.append(f"as_of is {skip} day{'s' if skip > 1 else ''} after today: history ends {last_complete}, the last complete day.")
    body["note"] = " ".join(notes) or None
    return Projection(**body)


def _backtest(result: dict, training: DayRange) -> dict:
    backtest = result["backtest"]
    return {
        "origins": [(training.start + dt.timedelta(days=o)).isoformat() for o in backtest["origins"]],
        "horizon_days": backtest["horizon"],
        "chosen": result["method"],
        "methods": {name: dict(score) for name, score in backtest["scores"].items()},
    }


def _growth(by_day: dict, history: DayRange, earlier: DayRange, first_day: dt.date) -> tuple[float | None, dict | None]:
    """Mean daily revenue of the history vs the days before it that are on or after the first event."""
    if first_day > earlier.end:
        return None, None
    previous = DayRange(max(earlier.start, first_day), earlier.end)
    history_revenue = sum(by_day.get(d, (0,))[0] for d in history.each_day())
    previous_revenue = sum(by_day.get(d, (0,))[0] for d in previous.each_day())
    compares = {"current": _span(history), "previous": _span(previous)}
    if not previous_revenue:
        return None, compares
    # Integers until the one division: equal spans give exactly history / previous − 1.
    return history_revenue * previous.days / (previous_revenue * history.days) - 1, compares

