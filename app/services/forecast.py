"""Daily forecasts with intervals and a rolling-origin backtest; pure: numbers in, numbers out.

`series` is a list of daily values (revenue in minor units, or a count), oldest first, whose
last value is the last complete day. Nothing here touches the database or the clock.

Methods and their intervals (``level`` is the central coverage in percent, z its normal quantile):
- ``moving_average``: every day is the mean of the last ``window`` values; interval
  mean ± z·s·√(1 + 1/w), s the sample standard deviation of those values (the "mean method"
  formula of Hyndman & Athanasopoulos, *Forecasting: principles and practice*, §5.5).
- ``seasonal_naive``: every day is the same weekday of the last week; interval
  point ± z·σ·√(k + 1), k = ⌊(step − 1) / 7⌋, σ the root mean square of the in-sample
  seasonal differences y[t] − y[t−7] (same source).
- ``ets``: statsmodels' ETSModel with additive errors, an additive damped trend and additive
  weekly seasonality, ETS(A,Ad,A), fitted on the last ``ETS_FIT_DAYS`` values; its own
  prediction intervals.
Horizon totals come from simulated paths, never from adding day bounds: ETS's ``simulate``,
and for the two simple methods bootstrapped residual paths (seeded, so an answer is
reproducible). Forecasts, bounds and simulated days are clipped at 0: revenue and counts
cannot be negative.
"""

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from threadpoolctl import threadpool_limits

SEASON = 7
MIN_HISTORY_DAYS = 14  # two weeks: below this no method here is offered
ETS_MIN_DAYS = 28  # four weeks: fewer and the seasonal ETS is not fitted (see the README)
ETS_FIT_DAYS = 90
BACKTEST_STEP_DAYS = 7
BACKTEST_MAX_ORIGINS = 8
SIMULATIONS = 1000
SEED = 20261202
METHODS = ("moving_average", "seasonal_naive", "ets")
AUTO_ORDER = METHODS  # ties go to the simpler method


class ModelError(Exception):
    """A model could not be fitted to this series."""


def z_value(level: int) -> float:
    """The normal quantile of a central ``level`` % interval."""
    return NormalDist().inv_cdf(0.5 + level / 200)


def _quantiles(level: int) -> tuple[float, float]:
    tail = (100 - level) / 2
    return tail, 100 - tail


def moving_average(train: Sequence[float], steps: int, level: int, window: int, rng=None) -> dict:
    """Mean of the last ``window`` values, its interval, and (with ``rng``) simulated paths."""
    values = np.asarray(train[-window:], dtype=float)
    w = len(values)
    mean = math.fsum(values) / w
    spread = float(np.std(values, ddof=1)) if w > 1 else 0.0
    half = z_value(level) * spread * math.sqrt(1 + 1 / w)
    result = {"point": [mean] * steps, "lower": [mean - half] * steps, "upper": [mean + half] * steps}
    if rng is not None:
        residuals = values - mean
        # Residual bootstrap: the mean's own error (the mean of w resampled residuals)
        # plus one resampled residual per day.
        mean_error = rng.choice(residuals, size=(SIMULATIONS, w)).mean(axis=1)
        result["paths"] = mean + mean_error[:, None] + rng.choice(residuals, size=(SIMULATIONS, steps))
    return result


def seasonal_naive(train: Sequence[float], steps: int, level: int, rng=None) -> dict:
    """Same weekday of the last week, its interval, and (with ``rng``) bootstrapped paths."""
    values = np.asarray(train, dtype=float)
    last_week = values[-SEASON:]
    point = [float(last_week[j % SEASON]) for j in range(steps)]
    differences = values[SEASON:] - values[:-SEASON]
    sigma = math.sqrt(float(np.mean(differences**2))) if len(differences) else 0.0
    z = z_value(level)
    half = [z * sigma * math.sqrt(j // SEASON + 1) for j in range(steps)]
    result = {
        "point": point,
        "lower": [p - h for p, h in zip(point, half, strict=True)],
        "upper": [p + h for p, h in zip(point, half, strict=True)],
    }
    if rng is not None:
        shocks = rng.choice(differences if len(differences) else np.zeros(1), size=(SIMULATIONS, steps))
        paths = np.empty((SIMULATIONS, steps))
        for j in range(steps):
            before = paths[:, j - SEASON] if j >= SEASON else np.full(SIMULATIONS, last_week[j])
            paths[:, j] = before + shocks[:, j]
        result["paths"] = paths
    return result


def ets(train: Sequence[float], steps: int, level: int, rng=None) -> dict:
    """ETS(A,Ad,A) with weekly seasonality on the last ``ETS_FIT_DAYS`` values."""
    import pandas as pd  # statsmodels' prediction frames need an index: a RangeIndex series
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # a second to import: only when used

    values = np.asarray(train[-ETS_FIT_DAYS:], dtype=float)
    if len(values) < ETS_MIN_DAYS:
        raise ModelError(f"ETS needs {ETS_MIN_DAYS} days, got {len(values)}")
    if np.ptp(values) == 0:
        # Every ETS model fits a constant series exactly: that value, no error, no width
        # (statsmodels cannot estimate a zero variance).
        constant = [float(values[0])] * steps
        result = {"point": constant, "lower": constant, "upper": constant}
        if rng is not None:
            result["paths"] = np.full((SIMULATIONS, steps), float(values[0]))
        return result
    # One BLAS thread: L-BFGS-B's small matrix work is 30× slower when OpenBLAS spreads it
    # over busy cores (measured: 330 ms → 11 ms per fit).
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # Convergence chatter on short or spiky series; a bad fit shows in the backtest.
        warnings.simplefilter("ignore")
        model = ETSModel(pd.Series(values), error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=SEASON,
                         initialization_method="heuristic")
        fitted = model.fit(disp=False)
        frame = fitted.get_prediction(start=len(values), end=len(values) + steps - 1).summary_frame(alpha=1 - level / 100)
        result = {
            "point": frame["mean"].tolist(),
            "lower": frame["pi_lower"].tolist(),
            "upper": frame["pi_upper"].tolist(),
        }
        if rng is not None:
            simulated = fitted.simulate(steps, anchor="end", repetitions=SIMULATIONS, rng=rng)
            result["paths"] = np.asarray(simulated, dtype=float).reshape(steps, SIMULATIONS).T
    if not all(math.isfinite(v) for key in ("point", "lower", "upper") for v in result[key]):
        raise ModelError("the fit did not converge to finite values")
    return result


def predict(method: str, train: Sequence[float], steps: int, level: int, window: int, rng=None) -> dict:
    """Point forecasts and day intervals for ``steps`` days after ``train``."""
    if method == "moving_average":
        return moving_average(train, steps, level, window, rng)
    if method == "seasonal_naive":
        return seasonal_naive(train, steps, level, rng)
    if method == "ets":
        return ets(train, steps, level, rng)
    raise ValueError(f"unknown method {method!r}")


def backtest_origins(n: int, horizon: int, min_train: int) -> list[int]:
    """Forecast origins (index of the first forecast day), every 7 days back from n − horizon."""
    origins = [n - horizon - BACKTEST_STEP_DAYS * k for k in range(BACKTEST_MAX_ORIGINS)]
    return sorted(o for o in origins if o >= min_train)


def seasonal_naive_scale(train: Sequence[float]) -> float:
    """Mean absolute in-sample error of "same weekday last week": MASE's denominator."""
    values = np.asarray(train, dtype=float)
    return float(np.mean(np.abs(values[SEASON:] - values[:-SEASON]))) if len(values) > SEASON else 0.0


def evaluate(method: str, series: Sequence[float], origins: list[int], horizon: int, level: int, window: int) -> dict:
    """Rolling-origin errors of one method: MAE, MASE, WAPE and interval coverage."""
    errors, actuals, scaled, inside = [], [], [], 0
    for origin in origins:
        train, test = series[:origin], np.asarray(series[origin:origin + horizon], dtype=float)
        forecast = predict(method, train, horizon, level, window)
        point = np.maximum(np.asarray(forecast["point"]), 0)
        lower, upper = np.maximum(np.asarray(forecast["lower"]), 0), np.maximum(np.asarray(forecast["upper"]), 0)
        error = np.abs(test - point)
        errors.extend(error.tolist())
        actuals.extend(np.abs(test).tolist())
        inside += int(np.sum((test >= lower) & (test <= upper)))
        scale = seasonal_naive_scale(train)
        if scale > 0:
            scaled.append(float(np.mean(error)) / scale)
    total_actual = math.fsum(actuals)
    return {
        "mae": math.fsum(errors) / len(errors),
        "mase": math.fsum(scaled) / len(scaled) if scaled else None,
        "wape": math.fsum(errors) / total_actual if total_actual else None,
        "coverage": inside / len(errors),
        "points": len(errors),
    }


def project(series: Sequence[float], *, method: str, horizon: int, level: int, window: int, skip: int = 0) -> dict:
    """Forecast days skip+1 .. skip+horizon after the series, with totals, backtest and notes."""
    return _project(tuple(float(v) for v in series), method, horizon, level, window, skip)


@lru_cache(maxsize=512)
def _project(series: tuple[float, ...], method: str, horizon: int, level: int, window: int, skip: int) -> dict:
    # Keyed by the series itself: a late event changes a value, so the key, so the answer.
    # Callers must not mutate the dict they get back.
    n = len(series)
    notes: list[str] = []
    candidates = list(METHODS) if method == "auto" else [method]
    if "ets" in candidates and n < ETS_MIN_DAYS + (horizon if method == "auto" else 0):
        why = f"ETS needs {ETS_MIN_DAYS} days of history" + (f" plus {horizon} to test it" if method == "auto" else "")
        candidates = [c for c in candidates if c != "ets"] or ["seasonal_naive"]
        notes.append(f"{why}; {n} available, so {' or '.join(_label(c) for c in candidates)} instead.")
    min_train = ETS_MIN_DAYS if "ets" in candidates else MIN_HISTORY_DAYS
    origins = backtest_origins(n, horizon, min_train)
    evaluated = sorted({*candidates, "moving_average", "seasonal_naive"}, key=METHODS.index)
    scores: dict[str, dict] = {}
    if origins:
        for name in evaluated:
            try:
                scores[name] = evaluate(name, series, origins, horizon, level, window)
            except ModelError as exc:
                notes.append(f"{_label(name)} left out: {exc}.")
    usable = [c for c in candidates if c in scores or not origins]
    if not usable:
        usable = ["seasonal_naive"]
        notes.append("Seasonal naive used instead.")
    if len(usable) > 1:
        if origins:
            chosen = min(usable, key=lambda c: (scores[c]["mae"], AUTO_ORDER.index(c)))
        else:
            chosen = "seasonal_naive"
            notes.append(f"Too little history to compare methods ({n} days): seasonal naive used.")
    else:
        chosen = usable[0]
    rng = np.random.default_rng(SEED)
    try:
        forecast = predict(chosen, series, skip + horizon, level, window, rng)
    except ModelError as exc:
        notes.append(f"{_label(chosen)} could not be fitted ({exc}): seasonal naive used.")
        chosen = "seasonal_naive"
        forecast = predict(chosen, series, skip + horizon, level, window, rng)
    clip = lambda values: [max(v, 0.0) for v in values[skip:]]  # noqa: E731
    totals = np.maximum(forecast["paths"][:, skip:], 0).sum(axis=1)
    low_q, high_q = _quantiles(level)
    point = clip(forecast["point"])
    return {
        "method": chosen,
        "point": point,
        "lower": clip(forecast["lower"]),
        "upper": clip(forecast["upper"]),
        "total": math.fsum(point),
        "total_lower": float(np.percentile(totals, low_q)),
        "total_upper": float(np.percentile(totals, high_q)),
        "backtest": {
            "origins": origins,
            "horizon": horizon,
            "scores": scores,
            "chosen": scores.get(chosen),
        },
        "notes": tuple(notes),
    }


def _label(method: str) -> str:
    return {"moving_average": "moving average", "seasonal_naive": "seasonal naive", "ets": "ETS"}[method]
