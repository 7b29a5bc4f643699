import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    region: str = Field(min_length=1, max_length=80)
    data_mb: int = Field(gt=0, le=10_000_000)
    validity_days: int = Field(gt=0, le=3650)
    price_minor_units: int = Field(ge=0, le=10**12)
    currency: Currency
    active: bool = True

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    region: str
    data_mb: int
    validity_days: int
    price_minor_units: int
    currency: str
    active: bool


class ProfileIn(BaseModel):
    iccid: str = Field(max_length=32)
    activation_code: str = Field(min_length=1, max_length=255)


class ProfilesIn(BaseModel):
    profiles: list[ProfileIn] = Field(min_length=1, max_length=10_000)


class ProfilesAdded(BaseModel):
    added: int


class OrderIn(BaseModel):
    plan_id: int = Field(gt=0, lt=2**31)


class EsimOut(BaseModel):
    iccid: str
    activation_code: str


class OrderOut(BaseModel):
    id: int
    status: str
    plan_id: int
    amount_minor_units: int
    currency: str
    created_at: dt.datetime
    esim: EsimOut | None = None


class PaymentIntentOut(BaseModel):
    payment_intent_id: str
    client_secret: str
    status: str


class ActivationOut(BaseModel):
    order_id: int
    status: str
    iccid: str
    activation_code: str


class WebhookOut(BaseModel):
    received: bool = True
    outcome: str
