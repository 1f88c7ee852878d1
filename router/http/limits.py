"""A ceiling on every request body, enforced while it streams in, before any route reads it.

FastAPI reads a JSON body before the app-wide guard runs, so without this an unauthenticated
client could make the server hold any amount of memory. A declared `Content-Length` over the
ceiling is refused at once; a chunked body is counted as it arrives and refused on the byte that
crosses it. Routes keep their own, smaller limits (`/hooks/*`: CAIRN_MAX_BODY_BYTES).
"""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware answering 413 to bodies over `limit` bytes."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit and not started:
                    # Answer now and tell the app the client left: whatever it makes of that
                    # (FastAPI turns it into a 400) is not sent.
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {"status": "rejected", "reason": f"request body exceeds {self.limit} bytes"}
        await JSONResponse(body, status_code=413, headers={"Connection": "close"})(
            scope, receive, send
        )
