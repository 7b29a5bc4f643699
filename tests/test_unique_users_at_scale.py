"""At a size where the old code estimated (over 200,000 events in range), the overview's unique
users through HTTP equal a plain-Python distinct count of the events, with and without cached bitmaps."""

import datetime as dt
import random
import secrets

from sqlalchemy import select

from app.demo import bulk_load, generate
from app.models.analytics import AnalyticsEvent
from app.models.user import AuthSession
from app.services import unique_users
from app.services.auth import token_hash
from tests.factories import create_user
from tests.helpers import auth

NOW = dt.datetime(2025, 9, 20, 15, 30, tzinfo=dt.UTC)


def test_overview_unique_users_are_exact_above_the_old_sketch_threshold(db, client):
    data = generate(days=150, users=95_000, seed=13, now=NOW)
    bulk_load(db, data, show_progress=False)
    admin = create_user(db, email="scale-admin@shop.test", is_admin=True, signup=False)
    token = secrets.token_urlsafe(32)
    db.add(AuthSession(user_id=admin.id, token_hash=token_hash(token), created_at=NOW, expires_at=NOW + dt.timedelta(days=3650)))
    db.flush()
    e = AnalyticsEvent
    events = db.execute(select(e.event_type, e.user_id, e.occurred_at)).all()
    assert len(events) > 200_000

    def expected(start: dt.date, end: dt.date) -> dict[str, int]:
        users: dict[str, set[int]] = {}
        for event_type, user_id, at in events:
            if start <= at.date() <= end:
                users.setdefault(event_type, set()).add(user_id)
        return {t: len(users.get(t, ())) for t in ("user_signup", "checkout_started", "payment_succeeded", "esim_activated")}

    rng = random.Random(4)
    first = data.start.date()
    ranges = [(first, NOW.date()), (dt.date(2025, 6, 1), dt.date(2025, 8, 31)), (dt.date(2025, 5, 17), dt.date(2025, 9, 2))]
    ranges += [tuple(sorted(first + dt.timedelta(days=rng.randrange(150)) for _ in range(2))) for _ in range(3)]

    def check():
        for start, end in ranges:
            response = client.get("/admin/analytics/overview", params={"start_date": str(start), "end_date": str(end)},
                                  headers=auth(token))
            assert response.status_code == 200, response.text
            body = response.json()
            assert "unique_users_approximate" not in body
            assert body["unique_users"] == expected(start, end), (start, end)

    unique_users.CACHE.clear()
    check()  # straight from the events: nothing cached
    assert unique_users.refresh_bitmaps(db, first, NOW.date(), today=NOW.date()) > 0
    db.flush()
    check()  # from the stored day and month bitmaps
