"""HTTP details every route shares: strict JSON bodies, HEAD and OPTIONS, and the ``Allow`` header.

- :class:`StrictJSONRoute` refuses query parameters the route does not declare (422 naming
  each; ``?component=3`` is not silently ignored), parses JSON bodies itself and refuses, as 422 problems naming the
  field, what ``json.loads`` lets through silently: a key given twice (the last one would win),
  NUL characters and lone UTF-16 surrogates (PostgreSQL cannot store them).
- :class:`MethodsMiddleware` answers ``HEAD`` on every ``GET`` route (headers only) and
  ``OPTIONS`` on every known path (204 with ``Allow``).
- :func:`allowed_methods` is the one table of methods per path, used for ``Allow`` on 405 too.
- :class:`BodyLimitMiddleware` refuses a body over the limit with 413, counting the bytes as they
  stream in (a declared ``Content-Length`` over it is refused before anything is read).
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, APIRouter
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_FORBIDDEN_TEXT = re.compile("[\x00\ud800-\udfff]")


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the keys it was given more than once."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    decoded = _Object()
    decoded.duplicates = []
    for key, value in pairs:
        if key in decoded and key not in decoded.duplicates:
            decoded.duplicates.append(key)
        decoded[key] = value
    return decoded


def _problems(
    value: Any, path: tuple[str | int, ...]
) -> Iterable[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        if _FORBIDDEN_TEXT.search(value):
            yield path, "text must not contain NUL characters or lone surrogates"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _problems(item, (*path, i))
    elif isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            yield (*path, key), "the key is given more than once"
        for key, item in value.items():
            if _FORBIDDEN_TEXT.search(key):
                yield (*path, key), "keys must not contain NUL characters or lone surrogates"
            yield from _problems(item, (*path, key))


def strict_loads(body: bytes) -> Any:
    """``json.loads`` that raises :class:`RequestValidationError` for duplicate keys, NUL
    characters and lone surrogates, naming each place (``JSONDecodeError`` for bad syntax)."""
    value = json.loads(body, object_pairs_hook=_object)
    errors = [
        {"type": "value_error", "loc": ("body", *path), "msg": message, "input": None}
        for path, message in _problems(value, ())
    ]
    if errors:
        raise RequestValidationError(errors)
    return value


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads an untyped body as JSON
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _query_names(dependant: Dependant) -> set[str]:
    """Every query parameter a route declares, its dependencies' included."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is decoded by :func:`strict_loads` before FastAPI sees it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = _query_names(self.dependant)
        takes_body = self.body_field is not None

        async def strict(request: Request) -> Response:
            if unknown := sorted(set(request.query_params.keys()) - known):
                takes = ", ".join(sorted(known)) or "none"
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("query", name),
                            "msg": f"unknown query parameter (this route takes: {takes})",
                        }
                        for name in unknown
                    ]
                )
            if takes_body and _is_json(request.headers.get("content-type")):
                body = await request.body()  # over the size limit: 413, raised while streaming
                if body:
                    try:
                        request._json = strict_loads(body)  # what request.json() returns
                    except json.JSONDecodeError:
                        pass  # FastAPI reports the syntax error itself
                    except UnicodeDecodeError:
                        raise RequestValidationError(
                            [{"type": "value_error", "loc": ("body",), "msg": "not UTF-8"}]
                        ) from None
            return await handler(request)

        return strict


def route_table(routes: Sequence[BaseRoute], routers: Sequence[APIRouter]) -> list[BaseRoute]:
    """Every route the app serves, flat (included routers are not iterable in FastAPI)."""
    return [*routes, *(route for router in routers for route in router.routes)]


def allowed_methods(table: Sequence[BaseRoute], path: str) -> list[str]:
    """The methods served at ``path``: those of every route whose pattern matches it, with
    ``HEAD`` beside ``GET`` and ``OPTIONS``; empty for a path no route serves."""
    methods: set[str] = set()
    for route in table:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    if not methods:
        return []
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"})


class MethodsMiddleware:
    """``HEAD`` as ``GET`` without the body; ``OPTIONS`` as 204 with ``Allow``."""

    def __init__(self, app: ASGIApp, table: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        methods = allowed_methods(self.table(), scope["path"])
        if scope["method"] == "OPTIONS" and methods:
            allow = ", ".join(methods).encode()
            await send(
                {"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]}
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["method"] == "OPTIONS" or "GET" not in methods:
            await self.app(scope, receive, send)  # 404, or 405 with Allow
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(
            413, f"the request body exceeds the limit of {limit} bytes (the setting {setting})"
        )


class BodyLimitMiddleware:
    """413 for a body over ``limit`` bytes, raised from ``receive`` while it streams in (FastAPI
    passes an ``HTTPException`` from reading the body on to the exception handlers)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        refuse: Callable[[Scope, Send, BodyTooLarge], Any],
        *,
        setting: str = "WEIGHTSPACE_MAX_BODY_BYTES",
        larger: Sequence[tuple[str, re.Pattern[str], int, str]] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.setting = setting
        self.refuse = refuse
        #: (method, path pattern, limit, its setting) of routes that take larger bodies
        #: (snapshot uploads).
        self.larger = tuple(larger)

    def limit_for(self, scope: Scope) -> tuple[int, str]:
        """The body limit of a request, and the setting that raises it."""
        for method, pattern, limit, setting in self.larger:
            if scope["method"] == method and pattern.fullmatch(scope["path"]):
                return limit, setting
        return self.limit, self.setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self.limit_for(scope)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self.refuse(scope, send, BodyTooLarge(limit, setting))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        await self.app(scope, counted, send)


class HostCheckMiddleware:
    """400 unless the ``Host`` header names one of ``allowed`` (port ignored; ``*`` any): a page
    on another site cannot reach a loopback server by rebinding its own name to 127.0.0.1."""

    def __init__(
        self,
        app: ASGIApp,
        allowed: Sequence[str],
        refuse: Callable[[Scope, Send, HTTPException], Any],
    ) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed}
        self.refuse = refuse

    def _host(self, scope: Scope) -> str:
        host = Headers(scope=scope).get("host", "").lower()
        if host.startswith("["):  # [::1]:8000
            return host[: host.find("]") + 1]
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.allowed:
            host = self._host(scope)
            if host not in self.allowed and host.strip("[]") not in self.allowed:
                await self.refuse(scope, send, HTTPException(400, "the Host header is not served"))
                return
        await self.app(scope, receive, send)
