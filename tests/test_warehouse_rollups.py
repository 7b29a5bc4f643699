"""How a range splits into the monthly and daily rollups' periods (`warehouse_rollups.covering`)."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from app.services.warehouse_rollups import covering

D = dt.date


def test_a_range_reads_its_whole_months_and_the_days_at_its_ends():
    assert covering(D(2025, 1, 15), D(2025, 4, 10)) == (
        [D(2025, 2, 1), D(2025, 3, 1)], [(D(2025, 1, 15), D(2025, 1, 31)), (D(2025, 4, 1), D(2025, 4, 10))])


def test_a_range_of_whole_months_reads_no_days():
    assert covering(D(2024, 12, 1), D(2025, 2, 28)) == ([D(2024, 12, 1), D(2025, 1, 1), D(2025, 2, 1)], [])


def test_a_range_inside_one_month_reads_only_days():
    assert covering(D(2025, 3, 2), D(2025, 3, 31)) == ([], [(D(2025, 3, 2), D(2025, 3, 31))])
    assert covering(D(2025, 3, 1), D(2025, 3, 30)) == ([], [(D(2025, 3, 1), D(2025, 3, 30))])


@given(start=st.dates(D(2020, 1, 1), D(2030, 1, 1)), length=st.integers(1, 800))
def test_the_periods_cover_every_day_of_the_range_once(start, length):
    end = start + dt.timedelta(days=length - 1)
    months, edges = covering(start, end)
    days = [a + dt.timedelta(days=i) for a, b in edges for i in range((b - a).days + 1)]
    for month in months:
        after = (month + dt.timedelta(days=32)).replace(day=1)
        days += [month + dt.timedelta(days=i) for i in range((after - month).days)]
    assert sorted(days) == [start + dt.timedelta(days=i) for i in range(length)]
