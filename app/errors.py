"""One error family for business and input failures; a single handler renders it."""


class AppError(Exception):
    status_code = 400

    def __init__(self, detail: str, *, status_code: int | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class InvalidInput(AppError):
    status_code = 422


class Unauthorized(AppError):
    status_code = 401

    def __init__(self, detail: str = "Not authenticated"):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
