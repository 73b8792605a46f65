"""A typed, synchronous HTTP client of the weightspace REST API (httpx only: no torch or numpy).

The operations themselves (paths, parameters, how answers are read) are written once in
:mod:`weightspace_client.operations`; this client performs their steps with ``httpx.Client``,
as :class:`~weightspace_client.aio.AsyncWeightspaceClient` does with ``httpx.AsyncClient``.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import httpx

from weightspace_client._version import __version__
from weightspace_client.errors import (
    ApiError,
    ChecksumError,
    ExperimentFailed,
    ReportFailed,
    WeightspaceError,
)
from weightspace_client.flows import (
    CHECKSUM_HEADER,
    DOWNLOAD_CHUNK,
    Call,
    Flow,
    Pages,
    Sleep,
    Step,
    Stream,
    Streamed,
    SyncDriver,
    page,
)
from weightspace_client.operations import IDEMPOTENCY_HEADER, Operations
from weightspace_client.retries import RetryTransport

__all__ = [
    "CHECKSUM_HEADER",
    "DEFAULT_URL",
    "IDEMPOTENCY_HEADER",
    "TOKEN_ENV",
    "URL_ENV",
    "ApiError",
    "ChecksumError",
    "ExperimentFailed",
    "ReportFailed",
    "WeightspaceClient",
    "WeightspaceError",
    "resolve_base_url",
    "resolve_token",
]

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "WEIGHTSPACE_URL"
TOKEN_ENV = "WEIGHTSPACE_TOKEN"
#: How many times a request is sent at most, with the client's own networking.
DEFAULT_ATTEMPTS = 5


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$WEIGHTSPACE_URL``, else :data:`DEFAULT_URL`; no trailing slash."""
    url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
    return url.rstrip("/")


def resolve_token(token: str | None = None) -> str | None:
    """``token``, else ``$WEIGHTSPACE_TOKEN``, else no token."""
    return token or os.environ.get(TOKEN_ENV) or None


def default_headers(token: str | None) -> dict[str, str]:
    """What every request of a client carries: JSON wanted, who asks, and the bearer token."""
    headers = {"Accept": "application/json", "User-Agent": f"weightspace-client/{__version__}"}
    token = resolve_token(token)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def attempts_for(retries: int | None, own_transport: bool) -> int:
    """``retries``, else 5 with the client's own networking and 1 with a caller's transport."""
    return retries if retries is not None else (1 if own_transport else DEFAULT_ATTEMPTS)


class WeightspaceClient(Operations, SyncDriver):
    """Client of one weightspace service.

    Parameters
    ----------
    base_url : str, optional
        Root URL of the API; default ``$WEIGHTSPACE_URL``, then ``http://127.0.0.1:8000``.
    token : str, optional
        Sent as ``Authorization: Bearer <token>``; default ``$WEIGHTSPACE_TOKEN``, if set.
    timeout : float
        Seconds for each network operation (connect, read, write) of one request.
    transport : httpx.BaseTransport, optional
        For tests (``httpx.MockTransport``) or custom networking.
    retries : int, optional
        Attempts per request on connection errors and 502/503/504, with exponential backoff,
        for requests that are safe to repeat (see :mod:`weightspace_client.retries`). Default
        5 with the client's own networking, 1 (no retries) with a ``transport`` of yours.

    Use it as a context manager, or call :meth:`close`, to release its connections.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retries: int | None = None,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        attempts = attempts_for(retries, transport is not None)
        if attempts > 1:
            transport = RetryTransport(transport or httpx.HTTPTransport(), attempts=attempts)
        #: The underlying ``httpx.Client`` (base URL and headers set), for requests of your own.
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=default_headers(token),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WeightspaceClient({self.base_url!r})"

    # -- performing the operations' steps -------------------------------------------------

    def _perform(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end, performing each step it yields; its result."""
        try:
            step = next(flow)
            while True:
                try:
                    answer = self._step(step)
                except BaseException as error:  # the flow's own handlers and cleanups run
                    step = flow.throw(error)
                else:
                    step = flow.send(answer)
        except StopIteration as stop:
            return cast(T, stop.value)

    def _step(self, step: Step) -> Any:
        if isinstance(step, Sleep):
            time.sleep(step.seconds)
            return None
        if isinstance(step, Stream):
            return self._stream(step)
        return self._send(step)

    def _send(self, call: Call) -> httpx.Response:
        response = self.http.request(
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

    def _stream(self, stream: Stream) -> Streamed:
        with self.http.stream(
            "GET", stream.url, params=stream.params, headers=stream.headers
        ) as response:
            if response.is_error:
                response.read()
                raise ApiError.from_response(response)
            digest = hashlib.sha256()
            size = 0
            for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                stream.out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        return Streamed(response.headers, digest.hexdigest(), size)

    def _iterate(self, pages: Pages[T]) -> Iterator[T]:
        """The items of ``pages``, fetching the next page only as the iterator advances."""
        query: dict[str, Any] | None = dict(pages.params)
        seen: set[str] = set()
        while query is not None:
            items, query = self._perform(page(pages, query, seen))
            yield from items
