"""Reading a payment webhook's raw body into an event that every database can store.

The body is signed, but a signature says who sent it, not that it is sane: a signed body
may still be deeply nested, hold numbers no column or JSON type takes, or strings
PostgreSQL refuses. Each such body is refused with a ValueError whose text says why
(the API answers 400 with it), never an exception that would become a 500.
"""

import json
import math
import re

# MariaDB's JSON check (10.11) refuses documents nested 32 deep (MySQL: past 100); Stripe's events nest about 6.
MAX_DEPTH = 31
EVENT_ID_MAX = 255  # payment_webhook_events.provider_event_id
EVENT_TYPE_MAX = 80  # payment_webhook_events.event_type
# Integers beyond 64 bits are no amount, and not every database's JSON takes them.
INT_LIMIT = 2**63
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def decode_text(payload: bytes) -> str:
    """The body as text; ValueError when it is not UTF-8."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"Webhook body is not UTF-8 (invalid byte at position {exc.start})") from exc


def nesting_depth(text: str) -> int:
    """How deeply arrays and objects nest, counted without recursion (strings skipped)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _shown(number: str) -> str:
    return number if len(number) <= 20 else number[:20] + "…"


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {_shown(text)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    # Checked on the digits first: int() of thousands of digits is slow, then refused.
    if len(text.lstrip("-")) > 19 or not -INT_LIMIT <= int(text) < INT_LIMIT:
        raise ValueError(f"integer {_shown(text)} does not fit in 64 bits")
    return int(text)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_strings(value) -> None:
    """Refuse NUL and unpaired surrogates anywhere: PostgreSQL and UTF-8 drivers cannot store them."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            raise ValueError("Webhook body has a string with a NUL character or an unpaired surrogate")


def _short_string(value, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()


def parse_event(text: str) -> dict:
    """The Stripe-format event in a webhook body; ValueError naming what is wrong."""
    if nesting_depth(text) > MAX_DEPTH:
        raise ValueError(f"Webhook body nests more than {MAX_DEPTH} levels deep")
    try:
        event = json.loads(text, parse_float=_finite_float, parse_int=_bounded_int, parse_constant=_reject_constant)
    except ValueError as exc:  # json.JSONDecodeError is one
        raise ValueError(f"Webhook body is not JSON a database can store: {exc}") from exc
    if not isinstance(event, dict):
        raise ValueError("Webhook body is not a Stripe event (a JSON object)")
    if not _short_string(event.get("id"), EVENT_ID_MAX):
        raise ValueError(f"Webhook event id must be a string of 1 to {EVENT_ID_MAX} printable characters")
    if not _short_string(event.get("type"), EVENT_TYPE_MAX):
        raise ValueError(f"Webhook event type must be a string of 1 to {EVENT_TYPE_MAX} printable characters")
    _check_strings(event)
    return event
