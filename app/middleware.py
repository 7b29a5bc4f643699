"""ASGI middleware: request body limit, whole-request retry on deadlocks, 503 when the database fails."""

import logging

from sqlalchemy.exc import DBAPIError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import is_retryable, is_unavailable

log = logging.getLogger(__name__)


class BufferedRetryMiddleware:
    """Reads the whole body first (413 past `max_body_bytes`), then runs the request,
    running it again (up to `attempts` times) when the database reports a deadlock or
    lock timeout before any response was sent: the transaction was rolled back whole,
    so a retry is safe and counts once. When the database stays unavailable (retries
    spent, connection lost, locked) the answer is 503 with `Retry-After`, not a 500."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, attempts: int = 3):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_body_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body"):
                break
        for attempt in range(1, self.attempts + 1):
            started = False
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    # After the body, wait for the client's real disconnect: file and streaming
                    # responses listen for it, and an endless body replay would spin forever.
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            async def tracking_send(message: Message) -> None:
                nonlocal started
                started = True
                await send(message)

            try:
                await self.app(scope, replay, tracking_send)
                return
            except DBAPIError as exc:
                if started or not (is_retryable(exc) or is_unavailable(exc)):
                    raise
                if attempt < self.attempts and is_retryable(exc):
                    log.warning("Retrying %s %s after %s (attempt %d)", scope["method"], scope["path"], exc.orig, attempt)
                    continue
                log.exception("Database unavailable during %s %s", scope["method"], scope["path"])
                await self._send_json(send, 503, b'{"detail":"The database is busy or unavailable; please try again."}', [(b"retry-after", b"1")])
                return

    async def _too_large(self, send: Send) -> None:
        await self._send_json(send, 413, b'{"detail":"Request body too large"}')

    async def _send_json(self, send: Send, status: int, payload: bytes, headers: list | None = None) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *(headers or []),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
