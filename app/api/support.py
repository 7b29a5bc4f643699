"""Support and stock (admin): order search and problem filters, an order's timeline, refunds, inventory.

`/admin/orders` and `/admin/orders/{id}` answer JSON to API clients and render the
support pages to a browser (an `Accept` header naming text/html): one address per thing.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from app.api.deps import DB, AdminUser, AppSettings, optional_user
from app.api.pages import forbidden_page, login_redirect, render, templates
from app.api.responses import error_responses
from app.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from app.models.order import Order, OrderStatus
from app.models.user import User
from app.schemas.shop import _integral_float_to_int as integral_float_to_int
from app.services import refunds, support
from app.services.payments import get_provider
from app.web.money import format_money

router = APIRouter(tags=["admin support"], responses=error_responses(401, 403, 422))
OptionalUser = Annotated[User | None, Depends(optional_user)]
HTML_OR_JSON = {200: {"content": {"application/json": {}, "text/html": {}}}}


# The bounds before Strict/BeforeValidator, so they reach the JSON Schema as exclusiveMinimum/Maximum.
RefundAmount = Annotated[int, Field(gt=0, lt=2**31), Strict(), BeforeValidator(integral_float_to_int)]


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor_units: RefundAmount | None = Field(None, description="Default: all that is left to refund")


class RefundOut(BaseModel):
    order_id: int
    refund_id: str
    amount_minor_units: int
    currency: str
    outcome: str
    status: str
    refunded_minor_units: int


def wants_page(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def require_admin(user: User | None) -> User:
    if user is None:
        raise Unauthorized()
    if not user.is_admin:
        raise Forbidden("Admin access required")
    return user


templates.env.filters["money"] = format_money


@router.get("/admin/orders", responses=HTML_OR_JSON)
def list_orders(
    request: Request,
    session: DB,
    settings: AppSettings,
    user: OptionalUser,
    q: Annotated[str | None, Query(max_length=254, description="Order id, email (or part), ICCID or payment intent id")] = None,
    status: Annotated[str | None, Query(max_length=20, description=f"Only orders in this status: {', '.join(OrderStatus)}",
                                        json_schema_extra={"enum": ["", *OrderStatus]})] = None,
    problem: Annotated[str | None, Query(max_length=20, description="paid_not_activated (paid over 1 hour ago), payment_failed or refunded",
                                         json_schema_extra={"enum": ["", *support.Problem]})] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
):
    """Orders newest first, searched and filtered for support; a page of `limit` from `offset`."""
    page = wants_page(request)
    if page and user is None:
        return login_redirect(request)
    if page and not user.is_admin:
        return forbidden_page(request, settings, user, "The support pages are for shop administrators.")
    require_admin(user)
    # The page's form sends empty values for "any": they mean no filter.
    status, problem = choice(status, OrderStatus, "status"), choice(problem, support.Problem, "problem")
    found = support.find_orders(session, q=q, status=status, problem=problem, limit=limit, offset=offset)
    if not page:
        return found
    context = {"user": user, "found": found, "q": q or "", "status": status.value if status else "",
               "problem": problem.value if problem else "", "statuses": [s.value for s in OrderStatus],
               "problem_labels": PROBLEM_LABELS}
    return render(request, settings, "orders.html", context)


def choice(value: str | None, options, field: str):
    if not value:
        return None
    try:
        return options(value)
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is not one of {', '.join(options)}") from None


PROBLEM_LABELS = {
    "paid_not_activated": "Paid, not activated after 1 hour",
    "payment_failed": "Payment failed",
    "refunded": "Refunded",
}


def _order(session, order_id: int) -> Order:
    order = session.get(Order, order_id) if 0 < order_id < 2**31 else None
    if order is None:
        raise NotFound(f"Order {order_id} not found")
    return order


@router.get("/admin/orders/{order_id}", responses={**HTML_OR_JSON, **error_responses(404)})
def order_detail(request: Request, order_id: int, session: DB, settings: AppSettings, user: OptionalUser):
    """One order and its timeline: analytics events, webhook deliveries and refunds with their times."""
    page = wants_page(request)
    if page and user is None:
        return login_redirect(request)
    if page and not user.is_admin:
        return forbidden_page(request, settings, user, "The support pages are for shop administrators.")
    require_admin(user)
    detail = support.order_timeline(session, _order(session, order_id))
    if not page:
        return detail
    return render(request, settings, "order.html", {"user": user, "detail": detail})


@router.post("/admin/orders/{order_id}/refund", response_model=RefundOut, responses=error_responses(400, 404, 409, 413))
def refund_order(order_id: int, session: DB, settings: AppSettings, admin: AdminUser, body: RefundIn | None = None) -> RefundOut:
    """Refund a paid order, all that is left or `amount_minor_units`; counted like a provider's refund webhook."""
    order = refunds.lock_order(session, _order(session, order_id).id)
    left = refunds.refundable_minor_units(order)
    if order.status not in refunds.REFUNDABLE:
        raise Conflict(f"Order {order.id} is {order.status}; only a paid order can be refunded")
    if left == 0:
        raise Conflict(f"Order {order.id} is already fully refunded")
    amount = body.amount_minor_units if body and body.amount_minor_units is not None else left
    if amount > left:
        raise InvalidInput(f"amount_minor_units: {amount} is more than the {left} {order.currency} left to refund on order {order.id}")
    provider = get_provider(settings)
    refund = provider.create_refund(order, amount)
    if refund.status == "succeeded":
        outcome = refunds.apply_refund(session, order, refund, provider=provider.name, source="admin")
    else:
        outcome = f"refund_{refund.status}"[:40]  # counted when the provider's webhook says succeeded
    return RefundOut(
        order_id=order.id, refund_id=refund.id, amount_minor_units=refund.amount_minor_units, currency=order.currency,
        outcome=outcome, status=order.status, refunded_minor_units=order.refunded_minor_units,
    )


@router.get("/admin/inventory")
def inventory(session: DB, admin: AdminUser) -> dict:
    """eSIM stock per plan: free profiles, activations in the last 14 days, days left at that rate (low under 7)."""
    return support.inventory(session)
