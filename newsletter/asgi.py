"""ASGI middleware the web service and the preview share: a cap on request bodies, counted while they stream."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuses with 413 a request body over `limit` bytes, whatever its framing, without holding more than that.

    The count is made on the messages the app receives, so a chunked body (no Content-Length) is cut
    off as soon as it passes the limit; a declared Content-Length over it is refused before any is read.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    def too_large(self) -> HTTPException:
        return HTTPException(413, f"The request body is over the limit of {self.limit:,} bytes.")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        refused = declared.isdigit() and int(declared) > self.limit
        received = 0

        async def counted() -> Message:
            nonlocal received
            if refused:
                raise self.too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self.too_large()
            return message

        await self.app(scope, counted, send)
