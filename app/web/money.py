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
