import datetime as dt
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, StringConstraints, field_validator

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")]
# Text stored as-is: no control characters (PostgreSQL cannot store NUL in a text column at all).
PlainText = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]


def _integral_float_to_int(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


# What the schema promises: JSON Schema's integer includes 5.0, but "5", true and 5.5 are
# not integers (pydantic's lax mode would take the first two), and only true/false is boolean.
JsonInt = Annotated[int, Strict(), BeforeValidator(_integral_float_to_int)]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PlainText = Field(min_length=1, max_length=120)
    region: PlainText = Field(min_length=1, max_length=80)
    data_mb: JsonInt = Field(gt=0, le=10_000_000)
    validity_days: JsonInt = Field(gt=0, le=3650)
    price_minor_units: JsonInt = Field(ge=0, le=2**31 - 1)  # plans.price_minor_units is a 32-bit INTEGER
    currency: Currency
    active: StrictBool = True

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
    iccid: PlainText = Field(max_length=32)
    activation_code: PlainText = Field(min_length=1, max_length=255)


class ProfilesIn(BaseModel):
    profiles: list[ProfileIn] = Field(min_length=1, max_length=10_000)


class ProfilesAdded(BaseModel):
    added: int


class OrderIn(BaseModel):
    plan_id: JsonInt = Field(gt=0, lt=2**31)


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
