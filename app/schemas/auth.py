from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, Field, field_validator


class _EmailIn(BaseModel):
    email: str = Field(max_length=254, examples=["u1@shop.test"], json_schema_extra={"format": "email"})

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        """Trimmed and lower-cased; `.test` addresses are accepted for staging and demos."""
        value = value.strip().lower()
        try:
            validate_email(value, check_deliverability=False, test_environment=True)
        except EmailNotValidError as exc:
            raise ValueError(f"not a valid email address: {exc}") from None
        return value


class RequestCodeIn(_EmailIn):
    pass


class VerifyCodeIn(_EmailIn):
    code: str = Field(min_length=1, max_length=12)


class UserOut(BaseModel):
    id: int
    email: str
    is_admin: bool


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    user: UserOut


class MessageOut(BaseModel):
    detail: str
