"""Currency facts for display: decimals per ISO 4217 code, from Babel's CLDR data."""

from functools import lru_cache

from babel.numbers import get_currency_precision, list_currencies

DEFAULT_DECIMALS = 2


@lru_cache
def currency_decimals() -> dict[str, int]:
    """Currencies whose minor unit is not 1/100 (JPY 0, KWD 3, ...); the rest use 2."""
    return {
        code: precision
        for code in sorted(list_currencies())
        if (precision := get_currency_precision(code)) != DEFAULT_DECIMALS
    }


def format_money(amount_minor_units: int | None, currency: str | None) -> str:
    """`1999, "USD"` → `19.99 USD` (the currency's own decimals); empty for no amount."""
    if amount_minor_units is None or not currency:
        return ""
    places = currency_decimals().get(currency, DEFAULT_DECIMALS)
    major = amount_minor_units / 10**places
    return f"{major:,.{places}f} {currency}"
