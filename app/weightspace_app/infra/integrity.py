"""Serving stored snapshots without ever completing a download of bad bytes.

:func:`verified_chunks` reads the first chunk before the response starts (a missing object is
reported as a problem document, not as a 200 that ends early) and withholds the last chunk until
the digest of the whole file matches the recorded sha256; on a mismatch it raises mid-stream, so
the server aborts the response and the client sees a truncated body, never a complete 200.
Files that fit in one chunk are verified entirely before the first byte is sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from weightspace.snapshots import ChecksumError, ObjectNotFound, ObjectStore


def verified_chunks(
    store: ObjectStore,
    key: str,
    size: int,
    sha256: str,
    chunk: int,
    on_damage: Callable[[str], None] | None = None,
) -> Iterator[bytes]:
    """The object's bytes in chunks, verified as described above. Raises ObjectNotFound or
    ChecksumError before returning if the damage shows in the first chunk; ``on_damage`` is told
    why in every case (also when the stream is aborted later)."""
    digest = hashlib.sha256()

    def damaged(why: str) -> ChecksumError:
        if on_damage is not None:
            on_damage(why)
        return ChecksumError(why)

    def read(start: int) -> bytes:
        stop = min(start + chunk, size)
        try:
            data = store.get_range(key, start, stop)
        except ObjectNotFound:
            if on_damage is not None:
                on_damage("its object is missing from the store")
            raise
        if len(data) != stop - start:
            raise damaged("its object is shorter than recorded")
        digest.update(data)
        return data

    def verify() -> None:
        if digest.hexdigest() != sha256:
            raise damaged("its bytes do not match their checksum")

    first = read(0) if size > 0 else b""
    if size <= chunk:
        verify()

    def stream() -> Iterator[bytes]:
        pending = first
        for start in range(chunk, size, chunk):
            following = read(start)
            yield pending
            pending = following
        if size > chunk:
            verify()  # before the last chunk: a bad file never completes
        yield pending

    return stream()
