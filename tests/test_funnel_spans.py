"""The period spans the funnel's rollup reads sum: every day of the range once, no day outside it."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from app.services.funnel_rollup_path import period_spans

D = dt.date


def test_a_year_ending_today_reads_its_last_month_whole_and_its_first_as_the_month_minus_eight_days():
    # 2025-12-09 .. 2026-12-08, today 2026-12-08: December 2025 is its month minus Dec 1..8 (8 days against 23),
    # January..November whole, December 2026 its month (the days after today hold no rows, so they cost nothing).
    assert period_spans(D(2025, 12, 9), D(2026, 12, 8), D(2026, 12, 9)) == [
        ("m", D(2025, 12, 1), D(2027, 1, 1), 1),
        ("d", D(2025, 12, 1), D(2025, 12, 9), -1),
        ("d", D(2026, 12, 9), D(2027, 1, 1), -1),
    ]


def test_short_cuts_of_a_past_month_read_their_days():
    # Nov 3..6: 4 days against the month plus 26 days outside.
    assert period_spans(D(2026, 11, 3), D(2026, 11, 6)) == [("d", D(2026, 11, 3), D(2026, 11, 7), 1)]
    # Without a last day every day costs: Nov 2..30 is the month minus Nov 1 (2 + 1 < 29).
    assert period_spans(D(2026, 11, 2), D(2026, 11, 30)) == [("m", D(2026, 11, 1), D(2026, 12, 1), 1), ("d", D(2026, 11, 1), D(2026, 11, 2), -1)]
    assert period_spans(D(2026, 10, 1), D(2026, 11, 30)) == [("m", D(2026, 10, 1), D(2026, 12, 1), 1)]


@given(
    start=st.dates(D(2024, 1, 1), D(2026, 12, 31)), length=st.integers(1, 400),
    last_day=st.none() | st.dates(D(2024, 1, 1), D(2027, 3, 1)),
)
def test_signed_spans_count_each_day_of_the_range_once(start, length, last_day):
    end = start + dt.timedelta(days=length - 1)
    coverage: dict[dt.date, int] = {}
    for period, first, after, sign in period_spans(start, end, last_day):
        if period == "m":
            assert first.day == 1 and after.day == 1
        day = first
        while day < after:
            coverage[day] = coverage.get(day, 0) + sign
            day += dt.timedelta(days=1)
    expected = {start + dt.timedelta(days=i): 1 for i in range(length)}
    assert {day: n for day, n in coverage.items() if n} == expected
    assert all(n >= 0 for n in coverage.values())
