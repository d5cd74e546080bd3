"""A request body over serving.max_body_bytes is a 413 before the service parses it.

Without a limit, a client could make a worker read and parse any amount (a 7 MB body took
30 s to answer). The body is refused by its Content-Length before a byte of it is read, or,
sent in chunks, as soon as the bytes received pass the limit: FastAPI passes on an
HTTPException raised while it reads a body, so the 413 is rendered like any other.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(limit: int) -> str:
    return f"the request body is over {limit:,} bytes (serving.max_body_bytes): send less per call"


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes()` bytes, asked at each request (the
    service sets its limit from the settings when it starts, after the app is built)."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int]) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes()
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await JSONResponse({"detail": too_large(limit)}, status_code=413)(scope, receive, send)
            return
        await self.app(scope, _counted(receive, limit), send)


def _counted(receive: Receive, limit: int) -> Receive:
    """`receive`, raising a 413 once the body received passes `limit` bytes."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise HTTPException(413, too_large(limit))
        return message

    return counted
