"""An asyncio client of the weightspace REST API: :class:`AsyncWeightspaceClient`.

The same operations as :class:`~weightspace_client.client.WeightspaceClient` (written once in
:mod:`weightspace_client.operations`), each a coroutine here, performed with
``httpx.AsyncClient``; list operations return async iterators. Retries as the sync client's
(:class:`~weightspace_client.retries.AsyncRetryTransport`).

    async with AsyncWeightspaceClient() as client:
        experiment = await client.submit(spec)
        final = await client.wait(experiment["id"])
        pca = await client.pca(final["id"])
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import httpx

from weightspace_client.client import attempts_for, default_headers, resolve_base_url
from weightspace_client.errors import ApiError
from weightspace_client.flows import (
    DOWNLOAD_CHUNK,
    AsyncDriver,
    Call,
    Flow,
    Pages,
    Sleep,
    Step,
    Stream,
    Streamed,
    page,
)
from weightspace_client.operations import Operations
from weightspace_client.retries import AsyncRetryTransport

T = TypeVar("T")


class AsyncWeightspaceClient(Operations, AsyncDriver):
    """Async client of one weightspace service; parameters as
    :class:`~weightspace_client.client.WeightspaceClient`'s (``transport`` an
    ``httpx.AsyncBaseTransport``).

    Use it with ``async with``, or await :meth:`aclose`, to release its connections. Files
    (downloads, report files) are written as their bytes arrive, between awaits.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        attempts = attempts_for(retries, transport is not None)
        if attempts > 1:
            transport = AsyncRetryTransport(
                transport or httpx.AsyncHTTPTransport(), attempts=attempts
            )
        #: The underlying ``httpx.AsyncClient`` (base URL and headers set).
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=default_headers(token),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncWeightspaceClient({self.base_url!r})"

    # -- performing the operations' steps -------------------------------------------------

    async def _perform(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end, performing each step it yields; its result."""
        try:
            step = next(flow)
            while True:
                try:
                    answer = await self._step(step)
                except BaseException as error:  # the flow's own handlers and cleanups run
                    step = flow.throw(error)
                else:
                    step = flow.send(answer)
        except StopIteration as stop:
            return cast(T, stop.value)

    async def _step(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Stream):
            return await self._stream(step)
        return await self._send(step)

    async def _send(self, call: Call) -> httpx.Response:
        response = await self.http.request(
            call.method,
            call.url,
            params=call.params,
            json=call.json,
            content=call.content,
            headers=call.headers,
        )
        if response.is_error and response.status_code not in call.accept:
            raise ApiError.from_response(response)
        return response

    async def _stream(self, stream: Stream) -> Streamed:
        async with self.http.stream(
            "GET", stream.url, params=stream.params, headers=stream.headers
        ) as response:
            if response.is_error:
                await response.aread()
                raise ApiError.from_response(response)
            digest = hashlib.sha256()
            size = 0
            async for chunk in response.aiter_bytes(DOWNLOAD_CHUNK):
                stream.out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return Streamed(response.headers, digest.hexdigest(), size)

    async def _iterate(self, pages: Pages[T]) -> AsyncIterator[T]:
        """The items of ``pages``, fetching the next page only as the iterator advances."""
        query: dict[str, Any] | None = dict(pages.params)
        seen: set[str] = set()
        while query is not None:
            items, query = await self._perform(page(pages, query, seen))
            for item in items:
                yield item
