"""Finance tables: ECB reference exchange rates and the refunds counted against orders."""

import datetime as dt
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, utc_now


class FxRate(Base):
    """One ECB reference rate: units of `currency` per 1 EUR on a publication day."""

    __tablename__ = "fx_rates"
    # "The last rate on or before a day" per currency, and the list of currencies.
    __table_args__ = (Index("ix_fx_rates_currency_day", "currency", "day"),)

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    # ECB publishes at most 5 significant decimals (0.58231 CYP) and up to 6 integer digits (372274 TRL).
    rate_per_eur: Mapped[Decimal] = mapped_column(Numeric(18, 6))


class Refund(Base):
    """A succeeded refund of an order's payment; the unique provider id counts it once."""

    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount_minor_units: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(20))
    refunded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utc_now)
