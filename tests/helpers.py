"""Helpers shared by tests: reading sent emails, logging in, signing webhooks."""

import email
import hashlib
import hmac
import json
import re
import time
from email import policy
from pathlib import Path

WEBHOOK_SECRET = "whsec_test_secret"


class Mailbox:
    """The .eml files written by the `file` email backend."""

    def __init__(self, directory: Path):
        self.directory = directory

    def messages(self, to: str | None = None) -> list[email.message.EmailMessage]:
        if not self.directory.exists():
            return []
        found = []
        for path in sorted(self.directory.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if to is None or message["To"] == to:
                found.append(message)
        return found

    def last_code(self, to: str) -> str:
        messages = self.messages(to)
        assert messages, f"no email was sent to {to}"
        match = re.search(r"\b(\d{6})\b", messages[-1].get_content())
        assert match, "the email holds no 6-digit code"
        return match.group(1)


def login(client, mailbox: Mailbox, email_address: str) -> dict:
    """Log in through the API; returns the verify-code response body."""
    response = client.post("/auth/request-code", json={"email": email_address})
    assert response.status_code == 202, response.text
    code = mailbox.last_code(email_address.strip().lower())
    response = client.post("/auth/verify-code", json={"email": email_address, "code": code})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response.json()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(event_id: str, event_type: str, intent_id: str, amount: int, currency: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "data": {"object": {"id": intent_id, "object": "payment_intent", "amount": amount, "currency": currency}},
        }
    ).encode()


def post_webhook(client, payload: bytes, signature: str | None = None):
    headers = {"Content-Type": "application/json"}
    headers["Stripe-Signature"] = signature if signature is not None else sign(payload)
    return client.post("/payments/webhook", content=payload, headers=headers)


def valid_iccid(body: str) -> str:
    """`body` (17 or 18 digits starting 89) plus its Luhn check digit."""
    digits = [int(c) for c in body]
    total = 0
    for index, value in enumerate(reversed(digits)):
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return body + str((10 - total % 10) % 10)


def rollup_rows(session) -> dict[str, list[tuple]]:
    """Every rollup row, sorted, for comparisons."""
    from sqlalchemy import select

    from app.services.dates import as_date
    from app.services.rollup_repo import ROLLUP_TABLES

    result = {}
    for table in ROLLUP_TABLES:
        columns = list(table.__table__.c)
        rows = session.execute(select(*columns).order_by(*columns[:3])).all()
        result[table.__tablename__] = [(as_date(r[0]), *r[1:3], int(r[3]), int(r[4])) for r in rows]
    return result
