"""eSIM profile inventory: one row per ICCID, claimed by at most one order."""

import datetime as dt

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utc_now


class EsimProfile(Base):
    __tablename__ = "esim_profiles"
    __table_args__ = (Index("ix_esim_profiles_plan_available", "plan_id", "order_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    iccid: Mapped[str] = mapped_column(String(20), unique=True)
    activation_code: Mapped[str] = mapped_column(String(255))
    # Unique: one order never holds two profiles, even under racing activations.
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True, nullable=True)
    assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utc_now)
