"""ECB exchange rates: the loader, and conversions checked by hand against real published rates."""

import datetime as dt
import subprocess
import sys
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.models.finance import FxRate
from app.services import fx
from tests.conftest import DATABASE_URL, ROOT
from tests.finance_helpers import admin_token, load_test_rates, paid_order, refund_event

pytestmark = pytest.mark.usefixtures("engine")


def test_the_bundled_ecb_history_parses_offline():
    rates = fx.read_ecb_file(fx.BUNDLED_FILE)
    assert fx.BUNDLED_FILE.name == "eurofxref-hist.zip"
    # Published values, as on the ECB's site for Friday 7 March 2025.
    assert rates[(dt.date(2025, 3, 7), "USD")] == Decimal("1.0857")
    assert rates[(dt.date(2025, 3, 7), "GBP")] == Decimal("0.84088")
    assert rates[(dt.date(2025, 3, 7), "JPY")] == Decimal("160.35")
    assert rates[(dt.date(2025, 3, 7), "EUR")] == 1
    assert (dt.date(2025, 3, 8), "USD") not in rates  # Saturday: no publication
    assert (dt.date(2026, 1, 2), "BGN") not in rates  # Bulgaria uses the euro from 2026


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1 must start with the column 'Date'"),
        ("Day,USD\n2025-01-02,1.03\n", "line 1 must start with the column 'Date'"),
        ("Date,usd\n2025-01-02,1.03\n", "'usd' is not an ISO 4217 currency code"),
        ("Date,USD,USD\n2025-01-02,1.03,1.04\n", "distinct currencies other than EUR"),
        ("Date,USD\n2025-01-02,abc\n", "line 2, USD: 'abc' is not a number"),
        ("Date,USD\n2025-01-02,-1.03\n", "line 2, USD: '-1.03' is not a positive rate"),
        ("Date,USD\n02/01/2025,1.03\n", "line 2: '02/01/2025' is not a date"),
        ("Date,USD\n2025-01-02,1.03\n2025-01-02,1.04\n", "line 3: 2025-01-02 appears twice"),
        ("Date,USD\n2025-01-02,1.03,7\n", "line 2 has more values than the header has currencies"),
        ("Date,USD,\n", "no rate rows"),
    ],
)
def test_malformed_rates_files_are_refused_with_the_reason(text, message):
    with pytest.raises(fx.FxFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fx.parse_ecb_csv(text)


def test_loading_is_idempotent_and_follows_a_corrected_file(db):
    first = fx.load_rates(db, fx.parse_ecb_csv("Date,USD,JPY,\n2025-03-07,1.0857,160.35,\n2025-03-06,1.0796,N/A,\n"))
    assert (first.inserted, first.updated, first.deleted) == (5, 0, 0)  # USD twice, JPY once, EUR once per day
    again = fx.load_rates(db, fx.parse_ecb_csv("Date,USD,JPY,\n2025-03-07,1.0857,160.35,\n2025-03-06,1.0796,N/A,\n"))
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    corrected = fx.load_rates(db, fx.parse_ecb_csv("Date,USD,\n2025-03-07,1.0858,\n2025-03-06,1.0796,\n"))
    assert (corrected.inserted, corrected.updated, corrected.deleted) == (0, 1, 1)  # USD fixed, JPY gone
    rows = db.execute(select(FxRate.day, FxRate.currency, FxRate.rate_per_eur).order_by(FxRate.day, FxRate.currency)).all()
    assert [(d, c, Decimal(r)) for d, c, r in rows] == [
        (dt.date(2025, 3, 6), "EUR", Decimal(1)), (dt.date(2025, 3, 6), "USD", Decimal("1.0796")),
        (dt.date(2025, 3, 7), "EUR", Decimal(1)), (dt.date(2025, 3, 7), "USD", Decimal("1.0858")),
    ]


@pytest.mark.single_db
def test_cli_loads_the_bundled_file_and_refuses_a_bad_one_without_change(tmp_path):
    database = f"sqlite:///{tmp_path / 'fx.db'}"
    env = {"DATABASE_URL": database, "PATH": "/usr/bin:/bin", "APP_ENV": "test", "SECRET_KEY": "x" * 32}
    run = lambda *args: subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: E731
    assert run("migrate").returncode == 0
    loaded = run("fx-rates", "load")
    assert loaded.returncode == 0, loaded.stderr
    assert "7126 days x 42 currencies from eurofxref-hist.zip: 228828 inserted, 0 updated, 0 deleted" in loaded.stdout
    again = run("fx-rates", "load")
    assert "0 inserted, 0 updated, 0 deleted" in again.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,USD\n2025-03-07,1.0857\n2025-03-10,oops\n")
    refused = run("fx-rates", "load", str(bad))
    assert refused.returncode == 1
    assert "Nothing loaded:" in refused.stderr and "line 3, USD: 'oops' is not a number" in refused.stderr
    import sqlite3

    with sqlite3.connect(tmp_path / "fx.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM fx_rates").fetchone() == (228828,)
    assert DATABASE_URL  # the suite's own database was not touched


def test_a_weekend_day_uses_fridays_rate_and_a_holiday_the_last_before(db):
    load_test_rates(db)
    book = fx.rate_book(db, {"USD", "GBP", "JPY", "BGN"}, dt.date(2025, 3, 8), dt.date(2026, 1, 5))
    assert book.rate("USD", dt.date(2025, 3, 8)) == (dt.date(2025, 3, 7), Decimal("1.0857"))
    assert book.rate("USD", dt.date(2025, 3, 9)) == (dt.date(2025, 3, 7), Decimal("1.0857"))
    assert book.rate("USD", dt.date(2025, 3, 10)) == (dt.date(2025, 3, 10), Decimal("1.0845"))
    # 25 and 26 December: no publication; 24 December's rates apply.
    assert book.rate("GBP", dt.date(2025, 12, 26)) == (dt.date(2025, 12, 24), Decimal("0.8729"))
    # BGN is missing from 2 January 2026 while USD is published: its last rate (31 December) applies.
    assert book.rate("BGN", dt.date(2026, 1, 2)) == (dt.date(2025, 12, 31), Decimal("1.9558"))
    # £29.99 on Boxing Day in US cents: 29.99 / 0.8729 × 1.1787 × 100 = 4049.629… → 4050
    assert fx.round_minor(book.convert(2999, "GBP", "USD", dt.date(2025, 12, 26))) == 4050
    # $5.99 in yen (no minor unit) on a Saturday: 5.99 / 1.0857 × 160.35 = 884.679… → 885
    assert fx.round_minor(book.convert(599, "USD", "JPY", dt.date(2025, 3, 8))) == 885


def test_no_rate_on_or_before_the_day_is_no_conversion(db):
    load_test_rates(db)
    book = fx.rate_book(db, {"USD", "ARS"}, dt.date(2025, 3, 1), dt.date(2025, 3, 10))
    assert book.convert(1000, "ARS", "USD", dt.date(2025, 3, 7)) is None  # the ECB publishes no ARS rate
    assert book.convert(1000, "USD", "EUR", dt.date(2025, 3, 2)) is None  # the test rates start on 3 March


def test_overview_in_usd_converts_each_day_at_its_rate_and_rounds_once_per_day(client, db):
    load_test_rates(db)
    headers = admin_token(db)
    # Friday 7 March 2025 (USD 1.0857, GBP 0.84088, JPY 160.35 per EUR):
    paid_order(db, price=1999, currency="EUR", when="2025-03-07 10:00")  # 19.99 × 1.0857 = 2170.3143 ¢
    paid_order(db, price=1299, currency="GBP", when="2025-03-07 11:00")  # 12.99 / 0.84088 × 1.0857 = 1677.2004 ¢
    paid_order(db, price=2000, currency="JPY", when="2025-03-07 12:00")  # 2000 / 160.35 × 1.0857 = 1354.1628 ¢
    paid_order(db, price=599, currency="USD", when="2025-03-07 13:00")  # 599 ¢
    # Friday total 5800.6775 → 5801 ¢ (one rounding for the day).
    # Saturday 8 March: Friday's rates. €14.99 → 1627.4643 → 1627 ¢; a €5.00 refund → 542.85 → 543 ¢.
    saturday = paid_order(db, price=1499, currency="EUR", when="2025-03-08 09:00")
    refund_event(db, saturday, amount=500, when="2025-03-08 18:00", refund_id="re_sat")
    paid_order(db, price=10000, currency="ARS", when="2025-03-08 10:00")  # no ECB rate at all: left out, listed
    response = client.get("/admin/analytics/overview?start_date=2025-03-07&end_date=2025-03-08&currency=usd", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["revenue"] == {"ARS": 10000, "EUR": 3498, "GBP": 1299, "JPY": 2000, "USD": 599}  # originals stay
    assert body["refunds"] == {"ARS": 0, "EUR": 500, "GBP": 0, "JPY": 0, "USD": 0}
    assert body["net_revenue"] == {"ARS": 10000, "EUR": 2998, "GBP": 1299, "JPY": 2000, "USD": 599}
    converted = body["converted"]
    assert converted["currency"] == "USD"
    assert converted["gross_revenue_minor_units"] == 5801 + 1627
    assert converted["refunds_minor_units"] == 543
    assert converted["net_revenue_minor_units"] == 5801 + 1627 - 543
    assert converted["payments"] == 5  # the ARS payment is not among them
    assert converted["average_order_value_minor_units"] == 1486  # 7428 / 5 = 1485.6
    assert converted["paying_users"] == 6
    assert converted["revenue_per_paying_user_minor_units"] == 1238  # 7428 / 6 = 1238.0
    assert converted["unconverted"] == {"ARS": 10000}
    assert converted["rates_through"] == "2025-03-07"
    assert converted["oldest_rate_age_days"] == 1
    series = client.get("/admin/analytics/timeseries?start_date=2025-03-07&end_date=2025-03-08&currency=USD", headers=headers).json()
    assert [(b["converted_revenue_minor_units"], b["converted_refunds_minor_units"], b["converted_net_revenue_minor_units"])
            for b in series["buckets"]] == [(5801, 0, 5801), (1627, 543, 1084)]
    assert sum(b["converted_net_revenue_minor_units"] for b in series["buckets"]) == converted["net_revenue_minor_units"]


def test_top_plans_rank_by_converted_revenue_when_a_currency_is_asked(client, db):
    load_test_rates(db)
    headers = admin_token(db)
    # The review's example: $1,599.80 ranked above £1,499.50 by raw number. In dollars on 7 March 2025
    # £1,499.50 is 1499.50 / 0.84088 × 1.0857 = $1,936.0755 → $1,936.08, so the pound plan comes first.
    paid_order(db, price=159980, currency="USD", when="2025-03-07 10:00")
    paid_order(db, price=149950, currency="GBP", when="2025-03-07 11:00")
    query = "start_date=2025-03-07&end_date=2025-03-07"
    raw = client.get(f"/admin/analytics/overview?{query}", headers=headers).json()["top_plans"]
    assert [p["currency"] for p in raw] == ["USD", "GBP"]
    assert "converted_revenue_minor_units" not in raw[0]
    converted = client.get(f"/admin/analytics/overview?{query}&currency=USD", headers=headers).json()["top_plans"]
    assert [(p["currency"], p["revenue_minor_units"], p["converted_revenue_minor_units"]) for p in converted] == [
        ("GBP", 149950, 193608), ("USD", 159980, 159980)
    ]


def test_unknown_currency_is_422_naming_the_field(client, db):
    headers = admin_token(db)
    empty = client.get("/admin/analytics/overview?currency=USD", headers=headers)
    assert empty.status_code == 422 and "fx-rates load" in empty.json()["detail"]
    load_test_rates(db)
    for path in ("overview", "timeseries"):
        response = client.get(f"/admin/analytics/{path}?currency=XYZ", headers=headers)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("currency: 'XYZ' has no exchange rates (one of AUD, BGN, BRL")
    assert client.get("/admin/analytics/projections?currency=XYZ&convert=true", headers=headers).status_code == 422
    assert client.get("/admin/analytics/overview?currency=US", headers=headers).status_code == 422


def test_projection_can_forecast_every_currency_converted(client, db):
    load_test_rates(db)
    headers = admin_token(db)
    paid_order(db, price=1000, currency="USD", when="2025-03-01 10:00")  # first event, before the history
    paid_order(db, price=1999, currency="EUR", when="2025-03-10 10:00")  # 19.99 × 1.0845 = 2167.9155 → 2168
    paid_order(db, price=599, currency="USD", when="2025-03-11 10:00")
    query = "as_of=2025-03-13&window_days=3&horizon_days=2&currency=USD"
    plain = client.get(f"/admin/analytics/projections?{query}", headers=headers).json()
    assert [h["revenue_minor_units"] for h in plain["history"]] == [0, 599, 0] and "converted" not in plain
    converted = client.get(f"/admin/analytics/projections?{query}&convert=true", headers=headers).json()
    assert converted["converted"] is True
    assert [h["revenue_minor_units"] for h in converted["history"]] == [2168, 599, 0]
    assert converted["projected_revenue_minor_units"] == 2 * 922  # mean 2767 / 3 = 922.33 → 922 per day
    assert db.scalar(select(func.count()).select_from(FxRate)) > 0
