"""Request ids and the access log: one line per request, with its id, status and duration.

The id is the caller's ``X-Request-ID`` when it is a short token (so a proxy's id carries
through), else a new one; it is set in the log context for everything the request logs, echoed
in the response header and written into problem documents.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from weightspace_app.infra import logs

HEADER = "x-request-id"
_ACCEPTED = re.compile(r"[A-Za-z0-9._-]{1,64}")
log = logging.getLogger("weightspace_service.access")


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == HEADER.encode():
            text = bytes(value).decode("latin-1")
            if _ACCEPTED.fullmatch(text):
                return text
    return uuid.uuid4().hex


class RequestContext:
    """Pure ASGI middleware (no buffering: streamed downloads stay streamed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        status = 500  # if the app fails before it answers
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER.encode()]
                headers.append((HEADER.encode(), rid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with logs.context(request_id=rid):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                log.info(
                    "%s %s %d %.1f ms",
                    scope["method"],
                    scope["path"],
                    status,
                    1000 * (time.perf_counter() - started),
                )
