"""The forecast module on hand-made series: exact values for the deterministic methods and
the backtest arithmetic, and ETS's interval coverage on synthetic weekly series."""

import math

import numpy as np
import pytest

from app.services import forecast

Z80 = 1.2815515655446004  # the normal 90th percentile
# Four weeks; the weekly pattern moves a little from week to week.
WEEK_A = [10, 20, 30, 40, 50, 60, 70]
WEEK_B = [12, 22, 28, 40, 50, 66, 70]
WEEK_C = [14, 20, 30, 44, 50, 60, 76]
WEEK_D = [10, 24, 30, 40, 54, 60, 70]
SERIES = WEEK_A + WEEK_B + WEEK_C + WEEK_D


def test_z_values():
    assert forecast.z_value(80) == pytest.approx(Z80, abs=1e-12)
    assert forecast.z_value(95) == pytest.approx(1.959963984540054, abs=1e-12)


def test_moving_average_point_and_interval():
    result = forecast.moving_average(WEEK_B, 3, 80, window=7)
    mean = 288 / 7
    # sample variance of week B: Σ(7·y − 288)² / 49 / 6 = 143024 / 294
    half = Z80 * math.sqrt(143024 / 294) * math.sqrt(1 + 1 / 7)
    assert result["point"] == [mean] * 3
    assert result["lower"] == pytest.approx([mean - half] * 3, rel=1e-12)
    assert result["upper"] == pytest.approx([mean + half] * 3, rel=1e-12)
    assert forecast.moving_average(SERIES, 1, 80, window=7)["point"] == [288 / 7]  # only the last 7


def test_seasonal_naive_point_and_interval_widen_each_week():
    result = forecast.seasonal_naive(SERIES, 9, 80)
    assert result["point"] == [10, 24, 30, 40, 54, 60, 70, 10, 24]
    # seasonal differences: B−A squares sum 48, C−B 100, D−C 100 → σ² = 248 / 21
    sigma = math.sqrt(248 / 21)
    assert [u - p for u, p in zip(result["upper"], result["point"], strict=True)] == pytest.approx(
        [Z80 * sigma] * 7 + [Z80 * sigma * math.sqrt(2)] * 2, rel=1e-12
    )
    assert result["lower"][0] == pytest.approx(10 - Z80 * sigma, rel=1e-12)


def test_backtest_arithmetic_on_a_hand_made_series():
    origins = forecast.backtest_origins(len(SERIES), 7, forecast.MIN_HISTORY_DAYS)
    assert origins == [14, 21]  # 28 − 7 and 28 − 14; 28 − 21 = 7 leaves too little to train on
    naive = forecast.evaluate("seasonal_naive", SERIES, origins, 7, 80, window=7)
    # origin 14 forecasts week B for week C: errors 2,2,2,4,0,6,6 (22); origin 21 week C for D: 4,4,0,4,4,0,6 (22)
    # MASE scales: in-sample |y − y₋₇| means 12/7 (A→B) and 34/14 (A→B, B→C)
    assert naive["mae"] == pytest.approx(44 / 14, rel=1e-12)
    assert naive["mase"] == pytest.approx((22 / 12 + 22 / 17) / 2, rel=1e-12)
    assert naive["wape"] == pytest.approx(44 / (294 + 288), rel=1e-12)
    # 80 % half widths z·√(48/7) = 3.36 and z·√(148/14) = 4.17: 4 of 7, then 6 of 7 inside
    assert naive["coverage"] == 10 / 14
    assert naive["points"] == 14

    average = forecast.evaluate("moving_average", SERIES, origins, 7, 80, window=7)
    # origin 14: mean of B = 288/7; Σ|7·C − 288| = 874 → 874/7. origin 21: mean of C = 42; Σ|D − 42| = 122
    assert average["mae"] == pytest.approx((874 / 7 + 122) / 14, rel=1e-12)
    assert average["mase"] == pytest.approx((874 / 49 / (12 / 7) + 122 / 7 / (17 / 7)) / 2, rel=1e-12)
    # half widths 30.2 and 30.4: only the largest error at each origin (34.9, 32) falls outside
    assert average["coverage"] == 12 / 14


def test_auto_picks_by_backtest_error_and_says_why_ets_was_left_out():
    result = forecast.project(SERIES, method="auto", horizon=7, level=80, window=7)
    assert result["method"] == "seasonal_naive"  # MAE 3.14 against the moving average's 17.6
    assert result["notes"] == (
        "ETS needs 28 days of history plus 7 to test it; 28 available, so moving average or seasonal naive instead.",
    )
    assert result["point"] == WEEK_D
    assert result["total"] == sum(WEEK_D)
    assert set(result["backtest"]["scores"]) == {"moving_average", "seasonal_naive"}
    assert result["backtest"]["chosen"]["mae"] == pytest.approx(44 / 14, rel=1e-12)


def test_a_future_day_skips_the_gap():
    result = forecast.project(SERIES, method="seasonal_naive", horizon=3, level=80, window=7, skip=2)
    assert result["point"] == [30, 40, 54]  # days 3..5 after the last one: the weekdays of D's 3rd..5th


def test_ets_asked_for_with_three_weeks_falls_back_to_seasonal_naive():
    result = forecast.project(SERIES[:21], method="ets", horizon=7, level=80, window=7)
    assert result["method"] == "seasonal_naive"
    assert result["notes"] == ("ETS needs 28 days of history; 21 available, so seasonal naive instead.",)
    assert result["point"] == WEEK_C


def test_ets_on_a_constant_series_is_that_constant():
    result = forecast.project([5] * 60, method="ets", horizon=7, level=80, window=14)
    assert (result["method"], result["notes"]) == ("ets", ())
    assert (result["point"], result["lower"], result["upper"]) == ([5.0] * 7, [5.0] * 7, [5.0] * 7)
    assert result["backtest"]["chosen"] == {"mae": 0.0, "mase": None, "wape": 0.0, "coverage": 1.0, "points": 28}
    assert (result["total"], result["total_lower"], result["total_upper"]) == (35, 35, 35)


def test_bounds_are_clipped_at_zero():
    spiky = [0, 0, 0, 0, 0, 0, 90] * 4
    result = forecast.project(spiky, method="moving_average", horizon=7, level=95, window=14)
    assert result["lower"] == [0.0] * 7  # mean 12.9 − 1.96 · 32 · 1.04 < 0
    assert result["total_lower"] >= 0


def test_simple_method_totals_come_from_paths_not_from_adding_day_bounds():
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 10, 56)
    result = forecast.project(list(100 + noise), method="moving_average", horizon=7, level=80, window=56)
    day_width = result["upper"][0] - result["lower"][0]
    total_width = result["total_upper"] - result["total_lower"]
    # Independent daily errors add up like √7, not 7; the mean's own error adds a little.
    # Analytic: sd of the total = s·√(7 + 49/56) → width 2·z·s·√7.875 against a day's 2·z·s·√(1 + 1/56).
    expected_ratio = math.sqrt(7.875) / math.sqrt(1 + 1 / 56)
    assert total_width / day_width == pytest.approx(expected_ratio, rel=0.1)  # 1000 bootstrap paths
    assert total_width < 7 * day_width / 2


def weekly_series(seed: int, days: int, noise: float) -> np.ndarray:
    """Level 500, a trend of 2 a day, a weekend peak, and normal noise of a known spread."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekly = np.array([-60, -40, -20, 0, 30, 80, 10])[t % 7]
    return 500 + 2 * t + weekly + rng.normal(0, noise, days)


@pytest.mark.parametrize("level", [80, 95])
def test_ets_intervals_cover_about_the_level_on_a_synthetic_weekly_series(level):
    # 40 seeded series, each fitted on 90 days and checked on the 7 that follow: 280 days.
    # Binomial spread of the share at 80 %: √(0.8·0.2/280) = 0.024 (0.013 at 95 %); the
    # days of one series share a fit, so allow about three spreads: ±0.07 (±0.05 at 95 %).
    inside = total = 0
    for seed in range(40):
        values = weekly_series(seed, 97, noise=20)
        result = forecast.ets(values[:90], 7, level)
        test = values[90:]
        inside += int(np.sum((test >= np.array(result["lower"])) & (test <= np.array(result["upper"]))))
        total += 7
    tolerance = 0.07 if level == 80 else 0.05
    assert abs(inside / total - level / 100) <= tolerance, inside / total


def test_ets_beats_the_simple_methods_in_its_own_backtest_on_a_trending_weekly_series():
    values = weekly_series(1, 180, noise=20)
    result = forecast.project(values, method="auto", horizon=7, level=80, window=14)
    scores = result["backtest"]["scores"]
    assert result["method"] == "ets"
    assert scores["ets"]["mae"] < scores["seasonal_naive"]["mae"] < scores["moving_average"]["mae"]
    assert scores["ets"]["mase"] < 1  # better than "same weekday last week"
    assert len(result["backtest"]["origins"]) == forecast.BACKTEST_MAX_ORIGINS
    # Its total's interval holds the true expected total of the next 7 days.
    t = np.arange(180, 187)
    expected_total = float(np.sum(500 + 2 * t + np.array([-60, -40, -20, 0, 30, 80, 10])[t % 7]))
    assert result["total_lower"] < expected_total < result["total_upper"]


def test_answers_are_cached_by_the_series_itself():
    values = list(weekly_series(3, 120, noise=20))
    first = forecast.project(values, method="auto", horizon=7, level=80, window=14)
    assert forecast.project(values, method="auto", horizon=7, level=80, window=14) is first
    values[-1] += 1  # a late event on the last day
    assert forecast.project(values, method="auto", horizon=7, level=80, window=14) is not first
