"""What one request may send the web interface: a bounded body, within a bounded time.

Starlette reads a whole JSON or form body into memory before a handler sees it, and
FastAPI's 422 repeats what it could not use: a 400 MB sign-in attempt, with no account,
took the process (under ``serve``, the policy service's too) past 2 GB. The bound is
checked as the body is read, so no more than ``max_bytes`` is ever held, and a body that
trickles in must be complete within ``seconds``.
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: a body past ``max_bytes`` is answered ``413``, one not complete
    within ``seconds`` of the request's head ``408``. uvicorn then reads what more comes
    and drops it (a close with the body unread would reset the connection, and the client
    might never see the answer); the server closes the connection when no next request
    starts within ``seconds`` (:func:`typogate.web.server.bounded_http`). A handler that
    reads no body is not affected."""

    def __init__(self, app: ASGIApp, max_bytes: int, seconds: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        too_large = declared.isdigit() and int(declared) > self.max_bytes
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        received = 0
        complete = False

        async def bounded() -> Message:
            nonlocal received, complete
            if complete:  # afterwards only a disconnect can come, whenever it does
                return await receive()
            if too_large:  # said so in its head: none of it is read
                raise self._too_large()
            try:
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    408, f"the request's body did not arrive within {self.seconds:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, bounded, send)

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"a request's body may be at most {self.max_bytes} bytes")
