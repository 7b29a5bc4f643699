"""The error answers routes can give, declared in OpenAPI so the schema tells the truth."""

from pydantic import BaseModel

from app.schemas.auth import MessageOut


class FieldErrorOut(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(BaseModel):
    """422: FastAPI's per-field list for malformed input, or one sentence from the app's own checks."""

    detail: str | list[FieldErrorOut]


DESCRIPTIONS = {
    400: "Bad request: a body that cannot be parsed, a wrong or expired code, a bad webhook signature",
    401: "No credentials, or a token that is not valid",
    403: "Logged in but not allowed",
    404: "No such resource (or not yours)",
    409: "Conflicts with the resource's current state",
    413: "Request body too large",
    422: "Invalid input; `detail` says which field and why",
    429: "Too many requests; see `Retry-After`",
}


def error_responses(*status_codes: int) -> dict[int | str, dict]:
    """`responses=` entries with the `{"detail": ...}` body for each status code."""
    return {
        code: {"model": ValidationErrorOut if code == 422 else MessageOut, "description": DESCRIPTIONS[code]}
        for code in status_codes
    }
