"""End-to-end through HTTP only: sign up, order, pay, activate, then the overview."""

from tests.helpers import auth, login, post_webhook, stripe_event, valid_iccid


def test_full_funnel_through_http(client, mailbox):
    admin = login(client, mailbox, "admin@shop.test")
    assert admin["user"]["is_admin"] is True
    admin_headers = auth(admin["access_token"])
    plan = client.post(
        "/admin/plans",
        json={"name": "Europe 5 GB", "region": "Europe", "data_mb": 5120, "validity_days": 30, "price_minor_units": 1999, "currency": "usd"},
        headers=admin_headers,
    )
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["id"]
    added = client.post(
        f"/admin/plans/{plan_id}/esim-profiles",
        json={"profiles": [{"iccid": valid_iccid(f"89440000000000000{i}"), "activation_code": f"LPA:1$x${i}"} for i in range(3)]},
        headers=admin_headers,
    )
    assert added.status_code == 201, added.text
    assert added.json() == {"added": 3}

    customer = login(client, mailbox, "U1@Shop.Test ")
    headers = auth(customer["access_token"])
    order = client.post("/orders", json={"plan_id": plan_id}, headers=headers)
    assert order.status_code == 201, order.text
    order = order.json()
    assert order["status"] == "pending" and order["amount_minor_units"] == 1999 and order["currency"] == "USD"

    intent = client.post(f"/orders/{order['id']}/payment-intent", headers=headers).json()
    assert intent["payment_intent_id"].startswith("pi_")
    payload = stripe_event("evt_1", "payment_intent.succeeded", intent["payment_intent_id"], 1999, "usd")
    for _ in range(3):
        response = post_webhook(client, payload)
        assert response.status_code == 200, response.text
    assert client.get(f"/orders/{order['id']}", headers=headers).json()["status"] == "paid"

    activation = client.post(f"/orders/{order['id']}/activate", headers=headers)
    assert activation.status_code == 200, activation.text
    again = client.post(f"/orders/{order['id']}/activate", headers=headers)
    assert again.json() == activation.json()

    overview = client.get("/admin/analytics/overview", headers=admin_headers)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert body["counts"] == {"user_signup": 2, "checkout_started": 1, "payment_succeeded": 1, "esim_activated": 1}
    assert body["revenue"] == {"USD": 1999}
    assert body["top_plans"] == [{"plan_id": plan_id, "plan_name": "Europe 5 GB", "currency": "USD", "revenue_minor_units": 1999, "payments": 1}]
