"""The steps an API operation asks of a client, and the drivers' shared vocabulary.

An operation is written once, as a generator (a *flow*) that yields steps -- send this request
(:class:`Call`), pause (:class:`Sleep`), stream this body into a file (:class:`Stream`) -- and
receives each step's answer; its return value is the operation's result. The synchronous and the
asynchronous client differ only in how they perform the steps (see ``_perform`` in
:mod:`weightspace_client.client` and :mod:`weightspace_client.aio`), so both send the same
requests and read the answers the same way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Concatenate, Generic, ParamSpec, Self, TypeVar
from typing import overload as _overload
from urllib.parse import quote

import httpx

from weightspace_client.errors import WeightspaceError

T = TypeVar("T")
P = ParamSpec("P")

#: Response header carrying the hex sha256 of a downloaded snapshot's bytes.
CHECKSUM_HEADER = "X-Checksum-Sha256"
DOWNLOAD_CHUNK = 1 << 20


@dataclass(frozen=True)
class Call:
    """Send a request; the answer is the ``httpx.Response`` (body read).

    A status of 400 or more raises :class:`~weightspace_client.errors.ApiError` in the flow,
    except those in ``accept``, which are answered like any other.
    """

    method: str
    url: str | httpx.URL
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    accept: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Sleep:
    """Pause for ``seconds``; the answer is None."""

    seconds: float


@dataclass(frozen=True)
class Stream:
    """``GET url``, writing the body to ``out`` as it arrives; the answer is a :class:`Streamed`.

    An error status raises :class:`~weightspace_client.errors.ApiError` (nothing is written).
    """

    url: str
    out: BinaryIO
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": "*/*"})


@dataclass(frozen=True)
class Streamed:
    """What :class:`Stream` wrote: the response's headers, the body's sha256 and size."""

    headers: httpx.Headers
    sha256: str
    size: int


Step = Call | Sleep | Stream
Flow = Generator[Step, Any, T]


@dataclass(frozen=True)
class Pages(Generic[T]):
    """The items (of type ``T``) of a list endpoint, page by page (``next_cursor`` followed
    until null)."""

    path: str
    params: Mapping[str, Any] = field(default_factory=dict)


class SyncDriver:
    """What :class:`~weightspace_client.client.WeightspaceClient` is to the descriptors below: a
    client whose operations return their results (a base class, so this module, which the
    clients import, need not import them)."""


class AsyncDriver:
    """What :class:`~weightspace_client.aio.AsyncWeightspaceClient` is to the descriptors below:
    a client whose operations return awaitables."""


class operation(Generic[P, T]):
    """An API operation whose body is a flow: read from a client, it is a method performing the
    flow with that client's transport -- returning ``T`` from :class:`WeightspaceClient`, an
    awaitable of ``T`` from :class:`AsyncWeightspaceClient`."""

    def __init__(self, flow: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self.flow = flow
        self.__doc__ = flow.__doc__
        self.__name__ = flow.__name__

    @_overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @_overload
    def __get__(self, client: SyncDriver, owner: type[Any]) -> Callable[P, T]: ...
    @_overload
    def __get__(self, client: AsyncDriver, owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        flow = self.flow

        @functools.wraps(flow)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._perform(flow(client, *args, **kwargs))

        return method


class paged(Generic[P, T]):
    """A list operation: its body returns :class:`Pages`; read from a client, it is a method
    returning an iterator of the items (an async iterator from the async client) that fetches
    the next page only as it advances."""

    def __init__(self, pages: Callable[Concatenate[Any, P], Pages[T]]) -> None:
        self.pages = pages
        self.__doc__ = pages.__doc__
        self.__name__ = pages.__name__

    @_overload
    def __get__(self, client: None, owner: type[Any]) -> Self: ...
    @_overload
    def __get__(self, client: SyncDriver, owner: type[Any]) -> Callable[P, Iterator[T]]: ...
    @_overload
    def __get__(self, client: AsyncDriver, owner: type[Any]) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, client: Any, owner: type[Any]) -> Any:
        if client is None:
            return self
        pages = self.pages

        @functools.wraps(pages)
        def method(*args: P.args, **kwargs: P.kwargs) -> Any:
            return client._iterate(pages(client, *args, **kwargs))

        return method


# -- small flows the operations share --------------------------------------------------------


def call(method: str, url: str | httpx.URL, **options: Any) -> Flow[httpx.Response]:
    """Send one request (see :class:`Call`) and return its response."""
    response: httpx.Response = yield Call(method, url, **options)
    return response


def get(url: str | httpx.URL, params: Mapping[str, Any] | None = None) -> Flow[Any]:
    """``GET url`` and return the decoded JSON."""
    response = yield from call("GET", url, params=params)
    return response.json()


#: The longest pause between two polls of a 202 answer, whatever its ``Retry-After`` says.
MAX_POLL_SECONDS = 5.0


def settled(method: str, url: str | httpx.URL, **options: Any) -> Flow[httpx.Response]:
    """Send one request; while the answer is 202 (workers compute it), wait ``Retry-After``
    seconds and ask its ``Location`` again. The first answer that is not 202."""
    response = yield from call(method, url, **options)
    while response.status_code == 202 and (location := response.headers.get("Location")):
        try:
            pause = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            pause = 1.0
        yield Sleep(min(max(pause, 0.1), MAX_POLL_SECONDS))
        response = yield from call("GET", location, headers=options.get("headers"))
    return response


def page(
    pages: Pages[Any], query: dict[str, Any], seen: set[str]
) -> Flow[tuple[list[Any], dict[str, Any] | None]]:
    """One page's items and the query of the next page (None after the last).

    A page is ``{"items": [...], "next_cursor": ...}``; a bare JSON list is one last page.
    """
    body = yield from get(pages.path, query)
    if isinstance(body, list):
        return body, None
    cursor = body.get("next_cursor")
    if not cursor:
        return body["items"], None
    if cursor in seen:
        raise WeightspaceError(f"the server repeated the cursor {cursor!r} of {pages.path}")
    seen.add(cursor)
    return body["items"], {**query, "cursor": cursor}


def every_item(pages: Pages[T]) -> Flow[list[T]]:
    """All the items of ``pages``, every page fetched."""
    items: list[T] = []
    query: dict[str, Any] | None = dict(pages.params)
    seen: set[str] = set()
    while query is not None:
        found, query = yield from page(pages, query, seen)
        items += found
    return items


def poll(
    fetch: Callable[[], Flow[T]],
    done: Callable[[T], bool],
    describe: Callable[[T], str],
    *,
    every: float,
    timeout: float | None,
    on_update: Callable[[T], None] | None,
) -> Flow[T]:
    """Fetch until ``done``; every state goes to ``on_update``; TimeoutError after ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        state = yield from fetch()
        if on_update is not None:
            on_update(state)
        if done(state):
            return state
        pause = every
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{describe(state)} after {timeout:g} s")
            pause = min(every, left)
        yield Sleep(pause)


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


# -- paths and files ---------------------------------------------------------------------------


def segment(value: object) -> str:
    """One path segment, percent-encoded (ids come from users)."""
    return quote(str(value), safe="")


def experiment_path(experiment_id: str) -> str:
    return f"/experiments/{segment(experiment_id)}"


def snapshots_path(experiment_id: str, run: int) -> str:
    return f"{experiment_path(experiment_id)}/runs/{int(run)}/snapshots"


def suite_path(suite_id: str) -> str:
    return f"/suites/{segment(suite_id)}"


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``target``, renamed onto it only if the block ends normally.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)  # mkstemp's 0600 is for the unfinished file only
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
