"""Many concurrent customers: sign up, check out, ask for payment intents, receive payment
webhooks (failed first, redelivered, delivered twice at once) and activate eSIMs."""

import asyncio
import email
import hashlib
import hmac
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import httpx

from loadtest.server import ADMIN_EMAIL, WEBHOOK_SECRET

PLANS = [("Europe 5 GB", 1999, "USD"), ("Asia 1 GB", 500, "EUR")]


@dataclass
class Stats:
    """Every request's endpoint, status and latency, plus what the clients saw happen."""

    samples: list[tuple[str, int, float]] = field(default_factory=list)
    transport_errors: Counter = field(default_factory=Counter)
    seen: Counter = field(default_factory=Counter)  # orders_created, paid, activated...


class Customer:
    def __init__(self, http: httpx.AsyncClient, stats: Stats, mail_dir: Path, rng: random.Random):
        self.http, self.stats, self.mail_dir, self.rng = http, stats, mail_dir, rng
        self.headers: dict[str, str] = {}

    async def call(self, name: str, method: str, path: str, **kwargs) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            self.stats.transport_errors[f"{name}: {type(exc).__name__}"] += 1
            return None
        self.stats.samples.append((name, response.status_code, time.perf_counter() - started))
        return response

    async def log_in(self, address: str) -> None:
        await self.call("request_code", "POST", "/auth/request-code", json={"email": address})
        code = await read_code(self.mail_dir, address)
        response = await self.call("verify_code", "POST", "/auth/verify-code", json={"email": address, "code": code})
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def webhook(self, event_type: str, intent_id: str, amount: int, currency: str, event_id: str) -> str | None:
        event = {"id": event_id, "object": "event", "type": event_type,
                 "data": {"object": {"id": intent_id, "object": "payment_intent", "amount": amount, "currency": currency.lower()}}}
        payload = json.dumps(event).encode()
        timestamp = int(time.time())
        signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={signature}"}
        response = await self.call("webhook", "POST", "/payments/webhook", content=payload, headers=headers)
        return response.json()["outcome"] if response is not None and response.status_code == 200 else None

    async def shop_once(self, plan_ids: list[int], serial: str) -> None:
        """One checkout from order to activation, with the duplicates a real provider and client produce."""
        plan = self.rng.randrange(len(plan_ids))
        _, price, currency = PLANS[plan]
        order = await self.call("create_order", "POST", "/orders", json={"plan_id": plan_ids[plan]}, headers=self.headers)
        if order is None or order.status_code != 201:
            return
        self.stats.seen["orders_created"] += 1
        order_id = order.json()["id"]
        intents = [await self.call("payment_intent", "POST", f"/orders/{order_id}/payment-intent", headers=self.headers)
                   for _ in range(self.rng.choice([1, 1, 2]))]  # a double click asks twice
        if any(i is None or i.status_code != 200 for i in intents):
            return
        intent_id = intents[0].json()["payment_intent_id"]
        if len({i.json()["payment_intent_id"] for i in intents}) != 1:
            self.stats.seen["second_intent_for_one_order"] += 1
        roll = self.rng.random()
        if roll < 0.15:
            return  # abandoned checkout
        if roll < 0.35:
            outcome = await self.webhook("payment_intent.payment_failed", intent_id, price, currency, f"evt_{serial}_f")
            self.stats.seen[f"failed_webhook_{outcome}"] += 1
            if self.rng.random() < 0.3:
                return  # gave up after the failure
        succeeded = f"evt_{serial}_s"
        deliveries = self.rng.choice([1, 1, 2, 3])
        if self.rng.random() < 0.3:
            # The provider delivering the same event twice at the same moment.
            outcomes = await asyncio.gather(*[self.webhook("payment_intent.succeeded", intent_id, price, currency, succeeded) for _ in range(2)])
        else:
            outcomes = [await self.webhook("payment_intent.succeeded", intent_id, price, currency, succeeded) for _ in range(deliveries)]
        self.stats.seen["paid"] += outcomes.count("paid")
        if self.rng.random() < 0.2:
            late = await self.webhook("payment_intent.payment_failed", intent_id, price, currency, f"evt_{serial}_late")
            self.stats.seen[f"late_failed_webhook_{late}"] += 1
        if "paid" not in outcomes or self.rng.random() < 0.1:
            return
        activations = await asyncio.gather(*[
            self.call("activate", "POST", f"/orders/{order_id}/activate", headers=self.headers)
            for _ in range(self.rng.choice([1, 1, 2]))
        ])
        iccids = {a.json()["iccid"] for a in activations if a is not None and a.status_code == 200}
        if iccids:
            self.stats.seen["activated"] += 1
        if len(iccids) > 1:
            self.stats.seen["two_profiles_for_one_order"] += 1
        await self.call("get_order", "GET", f"/orders/{order_id}", headers=self.headers)


async def read_code(mail_dir: Path, address: str, timeout: float = 10) -> str:
    """The code in the newest .eml the server wrote to `address`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(mail_dir.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == address:
                return re.search(r"\b(\d{6})\b", message["Subject"]).group(1)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"no login code reached {address}")


async def set_up_catalog(http: httpx.AsyncClient, stats: Stats, mail_dir: Path, profiles_per_plan: int) -> tuple[Customer, list[int]]:
    admin = Customer(http, stats, mail_dir, random.Random(0))
    await admin.log_in(ADMIN_EMAIL)
    plan_ids = []
    for index, (name, price, currency) in enumerate(PLANS):
        body = {"name": name, "region": "World", "data_mb": 1024, "validity_days": 7, "price_minor_units": price, "currency": currency}
        plan = await admin.call("admin", "POST", "/admin/plans", json=body, headers=admin.headers)
        plan_ids.append(plan.json()["id"])
        # The second plan is kept scarce so that it runs out under load (409, never a 5xx).
        stock = profiles_per_plan if index == 0 else max(1, profiles_per_plan // 30)
        profiles = [{"iccid": luhn(f"89{index + 1:02d}{i:015d}"), "activation_code": f"LPA:1$smdp.load${index}-{i}"} for i in range(stock)]
        added = await admin.call("admin", "POST", f"/admin/plans/{plan_ids[-1]}/esim-profiles", json={"profiles": profiles}, headers=admin.headers)
        assert added.status_code == 201, added.text
    return admin, plan_ids


def luhn(body: str) -> str:
    """`body` plus its Luhn check digit."""
    total = 0
    for index, digit in enumerate(int(c) for c in reversed(body)):
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit * 2 > 9 else digit * 2
        total += digit
    return body + str((10 - total % 10) % 10)


async def run_customers(base_url: str, mail_dir: Path, clients: int, duration: float, profiles_per_plan: int, seed: int) -> tuple[Stats, Customer]:
    """`clients` customers shopping in parallel until `duration` seconds have passed."""
    stats = Stats()
    # Drop idle connections well before uvicorn does (5 s): reusing one the server is closing
    # at that very moment is a client-side race (ReadError), not a server failure.
    limits = httpx.Limits(max_connections=clients * 3, max_keepalive_connections=clients * 3, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
        admin, plan_ids = await set_up_catalog(http, stats, mail_dir, profiles_per_plan)
        stats.samples.clear()  # the figures are about the shopping, not the set-up
        deadline = time.monotonic() + duration

        async def customer(number: int) -> None:
            shopper = Customer(http, stats, mail_dir, random.Random(seed * 1000 + number))
            await shopper.log_in(f"customer{number}@load.test")
            for round_number in range(10**9):
                if time.monotonic() >= deadline:
                    return
                await shopper.shop_once(plan_ids, f"{number}_{round_number}")

        async def dashboard() -> None:
            while time.monotonic() < deadline:
                await admin.call("overview", "GET", "/admin/analytics/overview", headers=admin.headers)
                await asyncio.sleep(0.5)

        await asyncio.gather(dashboard(), *(customer(n) for n in range(clients)))
        return stats, admin
