"""The public catalog and its admin side (plans, eSIM inventory)."""

from fastapi import APIRouter, status
from sqlalchemy import select

from app.api.deps import DB, AdminUser
from app.api.responses import error_responses
from app.errors import NotFound
from app.models.plan import Plan
from app.schemas.shop import PlanIn, PlanOut, ProfilesAdded, ProfilesIn
from app.services import catalog

router = APIRouter(tags=["catalog"])


@router.get("/plans", response_model=list[PlanOut])
def list_plans(session: DB) -> list[Plan]:
    """Every plan of the catalog."""
    return list(session.scalars(select(Plan).order_by(Plan.id)))


@router.post("/admin/plans", status_code=status.HTTP_201_CREATED, response_model=PlanOut, responses=error_responses(400, 401, 403, 413, 422))
def create_plan(body: PlanIn, session: DB, admin: AdminUser) -> Plan:
    """Add a plan to the catalog."""
    return catalog.create_plan(session, **body.model_dump())


@router.post(
    "/admin/plans/{plan_id}/esim-profiles",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfilesAdded,
    responses=error_responses(400, 401, 403, 404, 409, 413, 422),
)
def add_esim_profiles(plan_id: int, body: ProfilesIn, session: DB, admin: AdminUser) -> ProfilesAdded:
    """Import eSIM profiles for a plan: the whole batch or nothing."""
    # Ids are 32-bit INTEGER columns; PostgreSQL refuses to compare with anything larger.
    if not 0 < plan_id < 2**31 or session.get(Plan, plan_id) is None:
        raise NotFound(f"Plan {plan_id} does not exist")
    added = catalog.add_profiles(session, plan_id, [(p.iccid, p.activation_code) for p in body.profiles])
    return ProfilesAdded(added=added)
