"""Retries with exponential backoff, as an httpx transport around any other.

A request is retried when the connection fails (refused, reset, timed out while connecting) or
the answer is 502, 503 or 504 -- but only when repeating it cannot do something twice: safe and
idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) and submissions that carry an
``Idempotency-Key`` (the service answers a repeated key with the original resource).
A ``Retry-After`` in seconds is honoured (capped at ``max_delay``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})
_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def retryable(request: httpx.Request) -> bool:
    """Whether sending ``request`` again cannot have an effect twice."""
    return request.method in IDEMPOTENT_METHODS or "Idempotency-Key" in request.headers


class _Backoff:
    """How many attempts, and how long to wait before the next one."""

    def __init__(self, attempts: int, base_delay: float, max_delay: float) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = response.headers.get("Retry-After", "")
            if after.isdigit():
                return min(float(after), self.max_delay)
        backoff = min(self.base_delay * 2**attempt, self.max_delay)
        return float(backoff * (0.5 + random.random() / 2))  # jitter: clients do not retry in step


class RetryTransport(_Backoff, httpx.BaseTransport):
    """Send through ``inner``; retry as the module says, at most ``attempts`` times in all."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        attempts: int = 5,
        base_delay: float = 0.25,
        max_delay: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(attempts, base_delay, max_delay)
        self.inner = inner
        self.sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        may_retry = retryable(request)
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1 or not may_retry
            try:
                response = self.inner.handle_request(request)
            except _CONNECT_ERRORS:
                if last:
                    raise
                self.sleep(self._delay(attempt, None))
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            response.read()
            response.close()
            self.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(_Backoff, httpx.AsyncBaseTransport):
    """:class:`RetryTransport` for ``httpx.AsyncClient``: the same rules, awaiting the pauses."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        attempts: int = 5,
        base_delay: float = 0.25,
        max_delay: float = 8.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(attempts, base_delay, max_delay)
        self.inner = inner
        self.sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        may_retry = retryable(request)
        for attempt in range(self.attempts):
            last = attempt == self.attempts - 1 or not may_retry
            try:
                response = await self.inner.handle_async_request(request)
            except _CONNECT_ERRORS:
                if last:
                    raise
                await self.sleep(self._delay(attempt, None))
                continue
            if response.status_code not in RETRY_STATUSES or last:
                return response
            await response.aread()
            await response.aclose()
            await self.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    async def aclose(self) -> None:
        await self.inner.aclose()
