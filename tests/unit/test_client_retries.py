"""The client's retries: connection errors and 502/503/504, only for requests safe to repeat."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from weightspace_client import ApiError, AsyncWeightspaceClient, WeightspaceClient
from weightspace_client.retries import AsyncRetryTransport, RetryTransport


def flaky(failures: list[object]) -> tuple[httpx.MockTransport, list[str]]:
    """A transport that fails as ``failures`` says (an exception or a status), then answers 200."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if failures:
            failure = failures.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return httpx.Response(int(failure), json={"title": "down"})  # type: ignore[call-overload]
        return httpx.Response(200, json={"status": "ok"})

    return httpx.MockTransport(handler), calls


def client(transport: httpx.BaseTransport, attempts: int = 4) -> WeightspaceClient:
    wrapped = RetryTransport(transport, attempts=attempts, sleep=lambda _: None)
    return WeightspaceClient("http://test", transport=wrapped)


def test_get_is_retried_after_refused_connections_and_gateway_errors() -> None:
    transport, calls = flaky([httpx.ConnectError("refused"), 502, 503])
    assert client(transport).health() == {"status": "ok"}
    assert calls == ["GET"] * 4


def test_gives_up_after_the_attempts() -> None:
    transport, calls = flaky([504] * 10)
    with pytest.raises(ApiError) as error:
        client(transport, attempts=3).health()
    assert error.value.status == 504 and len(calls) == 3
    transport, calls = flaky([httpx.ConnectError("refused")] * 10)
    with pytest.raises(httpx.ConnectError):
        client(transport, attempts=2).health()
    assert len(calls) == 2


def test_post_without_idempotency_key_is_not_repeated_but_with_one_it_is() -> None:
    transport, calls = flaky([503])
    ws = client(transport)
    assert ws.http.post("/experiments", json={}).status_code == 503
    assert calls == ["POST"]
    transport, calls = flaky([503, httpx.ConnectError("reset")])
    ws = client(transport)
    response = ws.http.post("/experiments", json={}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 200
    assert calls == ["POST"] * 3


def test_other_errors_are_not_retried() -> None:
    transport, calls = flaky([500, 404])
    with pytest.raises(ApiError):
        client(transport).health()
    assert calls == ["GET"]


def test_retry_after_is_honoured() -> None:
    slept: list[float] = []
    responses = iter([httpx.Response(503, headers={"Retry-After": "3"}), httpx.Response(200)])
    inner = httpx.MockTransport(lambda request: next(responses))
    wrapped = RetryTransport(inner, attempts=2, sleep=slept.append)
    assert httpx.Client(transport=wrapped).get("http://test/x").status_code == 200
    assert slept == [3.0]


def test_the_async_client_retries_by_the_same_rules() -> None:
    transport, calls = flaky([httpx.ConnectError("refused"), 502, 503])
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> tuple[object, object]:
        wrapped = AsyncRetryTransport(transport, attempts=4, sleep=sleep)
        async with AsyncWeightspaceClient("http://test", transport=wrapped) as ws:
            health = await ws.health()
            refused = await ws.http.post("/experiments", json={})  # no key: sent once
        return health, refused.status_code

    assert asyncio.run(main()) == ({"status": "ok"}, 200)
    assert calls == ["GET"] * 4 + ["POST"] and len(slept) == 3
    assert all(0 < delay <= 8 for delay in slept)


def test_the_async_client_gives_up_after_the_attempts() -> None:
    transport, calls = flaky([504] * 10)

    async def main() -> None:
        async def sleep(_: float) -> None:
            return None

        wrapped = AsyncRetryTransport(transport, attempts=3, sleep=sleep)
        async with AsyncWeightspaceClient("http://test", transport=wrapped) as ws:
            await ws.health()

    with pytest.raises(ApiError) as raised:
        asyncio.run(main())
    assert raised.value.status == 504 and calls == ["GET"] * 3
